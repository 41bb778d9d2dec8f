"""``python -m kerascv_emotion`` runs the CLI (the workflow uses this form)."""

from kerascv_emotion.cli import main

main()
