"""``python -m mdrchca``: the command line, also what ``torchrun --nproc-per-node N -m mdrchca train ...`` starts
on each process."""

from mdrchca.cli.main import cli

if __name__ == "__main__":
    cli()
