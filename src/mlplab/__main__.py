"""`python -m mlplab ...` (and `torchrun ... -m mlplab train SPEC`): the `mlplab` command."""

import os

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (mlplab_launcher)
    from mlplab.cli import main

    main()
