"""The bundle's entry point: the same ``main`` as the ``slipstream`` console script."""

from app.__main__ import main

raise SystemExit(main())
