"""The xl_kpi test suite: a regular package, so ``from tests import _plan_helpers`` always finds these helpers."""
