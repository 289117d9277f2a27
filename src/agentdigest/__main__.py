"""``python -m agentdigest``: the command line, for a virtualenv whose scripts folder is not on PATH."""

from .cli import main

if __name__ == "__main__":  # importing the module (a tool that imports every module) runs nothing
    main()
