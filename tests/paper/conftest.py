"""The paper-exchange fixtures live in tests/support/paper.py (a plugin of the root conftest)."""
from tests.support.paper import (  # noqa: F401  (re-exported for modules that import them from here)
    DEMO,
    OTHER,
    RunningPaper,
    paper,
    paper_factory,
    sdk,
    smartapi_module,
)
