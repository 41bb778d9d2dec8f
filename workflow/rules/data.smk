def _data_command(wildcards, output):
    ds = dataset(wildcards)
    out_dir = Path(output.index).parent
    if "synthetic" in ds:
        s = ds["synthetic"]
        flag = " --viral-pneumonia" if s.get("viral_pneumonia") else ""
        return (f"{CLI} synth {s['kind']} {shlex.quote(str(out_dir))} --per-class {s.get('per_class', 100)} "
                f"--size {s.get('size', 64)} --seed {s.get('seed', 0)}{flag}")
    src = ds["source"]
    root = src["root"].format(data_root=config.get("data_root", "."))
    parts = [f"{CLI} index {shlex.quote(root)} --out {shlex.quote(output.index)}",
             f"--format {src.get('format', 'folders')}",
             f"--val-fraction {src.get('val_fraction', 0.1)} --test-fraction {src.get('test_fraction', 0.1)}",
             f"--seed {src.get('seed', 0)}"]
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
