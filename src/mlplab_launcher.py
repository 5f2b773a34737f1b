"""The `mlplab` command's entry point: settings that must come before torch is imported.

OpenMP reads `OMP_WAIT_POLICY` once, when torch loads it, and `import mlplab` imports torch,
so the console script starts here, outside the package: it makes idle OpenMP threads sleep
instead of spinning on cores other processes need (`PASSIVE`, unless the environment already
names a policy), then runs the CLI.
"""

import os


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from mlplab.cli import main as cli_main

    cli_main()
