"""How fact readers run: each job is one AWS call (or a few that belong together) and the facts it fills. Jobs run
concurrently; a job that fails leaves its facts unknown, each with the failed call and its error code as the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from medic.aws import error_code
from medic.facts.model import Facts

#: (the call it makes, as a failure names it; the facts it fills; the reader).
Job = tuple[str, tuple[str, ...], Callable[[], None]]


def run_jobs(facts: Facts, jobs: list[Job], max_workers: int) -> None:
    """Run `jobs` concurrently; a job that raised leaves its facts None, with the reason in `facts.missing`."""
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [(source, names, pool.submit(job)) for source, names, job in jobs]
    for source, names, future in futures:
        exc = future.exception()
        if exc is not None:
            for fact in names:
                setattr(facts, fact, None)
                facts.missing[fact] = f"{source} failed: {error_code(exc)}"


def run_job(facts: Facts, job: Job) -> None:
    """Run one job here and now, as `run_jobs` runs each: if it raises, its facts are None with the reason."""
    source, names, read = job
    try:
        read()
    except Exception as exc:  # noqa: BLE001 - any failure leaves the facts unknown, with the reason
        for fact in names:
            setattr(facts, fact, None)
            facts.missing[fact] = f"{source} failed: {error_code(exc)}"
