# dataset keys -> `synth` / `index` options; an absent key passes no option (the CLI's default)
SYNTH_FLAGS = {
    "per_class": "--per-class",
    "size": "--size",
    "seed": "--seed",
    "viral_pneumonia": "--viral-pneumonia",
}
SOURCE_FLAGS = {
    "format": "--format",
    "val_fraction": "--val-fraction",
    "test_fraction": "--test-fraction",
    "seed": "--seed",
}


def _data_command(wildcards, output):
    ds = dataset(wildcards)
    out_dir = Path(output.index).parent
    if "synthetic" in ds:
        s = ds["synthetic"]
        return f"{CLI} synth {s['kind']} {shlex.quote(str(out_dir))} {flags(s, SYNTH_FLAGS)}".strip()
    src = ds["source"]
    root = src["root"].format(data_root=config.get("data_root", "."))
    parts = [
        f"{CLI} index {shlex.quote(root)} --out {shlex.quote(output.index)}",
        flags(src, SOURCE_FLAGS).strip(),
    ]
    if src.get("classes"):
        parts.append(f"--classes {shlex.quote(','.join(src['classes']))}")
    for old, new in src.get("class_map", {}).items():
        parts.append(f"--class-map {shlex.quote(old + '=' + new)}")
    if src.get("dedupe"):
        parts.append("--dedupe")
    return " ".join(parts)


rule dataset_index:
    """Generate the built-in data (synthetic) or index a real data set into one index."""
    output:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
        meta=f"{RESULTS}/{{dataset}}/data/index.meta.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/index.log",
    resources:
        **job_resources("dataset_index"),
    params:
        command=_data_command,
    shell:
        "{params.command} > {log} 2>&1"
