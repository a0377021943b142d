"""``python -m lrkit.lrbench.run.ranks FOLDER``: one rank of a multi-process trial."""

from lrkit.lrbench.run.ranks.rank import main

if __name__ == "__main__":
    main()
