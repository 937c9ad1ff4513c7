"""``python -m xl_kpi``: the same program as the ``xl-kpi`` command."""

from .cli import main

if __name__ == "__main__":
    main()
