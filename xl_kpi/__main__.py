"""``python -m xl_kpi``: the same program as the ``xl-kpi`` command."""

from xl_kpi.cli import main

if __name__ == "__main__":
    main()
