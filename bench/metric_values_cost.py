"""What one busy function's Duration series costs the embedded world: put as Values/Counts, then p99 read back.

One series: 20 minutes of 6,000 invocations a minute (lognormal durations, rounded to 0.1 ms, so a minute has
hundreds of distinct values, sent as several datums of at most 150 values each, as AWS allows). The script puts it
with PutMetricData over HTTP, reads p99 back with GetMetricData (one query, 60 s periods) and with
GetMetricStatistics, and reports the wall times and the memory the stored series holds (tracemalloc, a second
run). A measurement, not a test: nothing is asserted.

    PYTHONPATH=shared .venv/bin/python bench/metric_values_cost.py [--minutes 20] [--per-minute 6000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from medic_tools.world.server import EmbeddedAWS

DIMENSIONS = [{"Name": "FunctionName", "Value": "checkout"}]
MAX_VALUES_PER_DATUM = 150
MAX_DATUMS_PER_CALL = 1000


def minute_datums(start: datetime, minutes: int, per_minute: int, seed: int = 7) -> list[dict[str, Any]]:
    """The series as PutMetricData members: per minute, the distinct durations and their counts, ≤ 150 a member."""
    rng = random.Random(seed)
    members: list[dict[str, Any]] = []
    for minute in range(minutes):
        counts = Counter(round(rng.lognormvariate(4.0, 0.6), 1) for _ in range(per_minute))
        pairs = sorted(counts.items())
        for first in range(0, len(pairs), MAX_VALUES_PER_DATUM):
            chunk = pairs[first : first + MAX_VALUES_PER_DATUM]
            members.append(
                {
                    "MetricName": "Duration",
                    "Dimensions": DIMENSIONS,
                    "Timestamp": start + timedelta(minutes=minute, seconds=30),
                    "Values": [value for value, _ in chunk],
                    "Counts": [float(count) for _, count in chunk],
                    "Unit": "Milliseconds",
                }
            )
    return members


def put(cloudwatch: Any, members: list[dict[str, Any]]) -> None:
    for first in range(0, len(members), MAX_DATUMS_PER_CALL):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=members[first : first + MAX_DATUMS_PER_CALL])


def read_p99(cloudwatch: Any, start: datetime, minutes: int) -> tuple[list[float], list[float]]:
    end = start + timedelta(minutes=minutes)
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": DIMENSIONS},
                    "Period": 60,
                    "Stat": "p99",
                },
            }
        ],
        StartTime=start,
        EndTime=end,
        ScanBy="TimestampAscending",
    )["MetricDataResults"][0]["Values"]
    statistics = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=DIMENSIONS,
        StartTime=start,
        EndTime=end,
        Period=60,
        ExtendedStatistics=["p99"],
    )["Datapoints"]
    extended = [d.get("ExtendedStatistics", {}).get("p99") for d in sorted(statistics, key=lambda d: d["Timestamp"])]
    return data, [v for v in extended if v is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--per-minute", type=int, default=6000)
    args = parser.parse_args()
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=args.minutes + 5)
    members = minute_datums(start, args.minutes, args.per_minute)
    distinct = sum(len(m["Values"]) for m in members)
    print(f"series: {args.minutes} min x {args.per_minute}/min = {args.minutes * args.per_minute} invocations, "
          f"{len(members)} PutMetricData members, {distinct} (value, count) pairs")  # fmt: skip
    with EmbeddedAWS() as aws:
        cloudwatch = aws.client("cloudwatch")
        began = time.perf_counter()
        put(cloudwatch, members)
        put_s = time.perf_counter() - began
        began = time.perf_counter()
        data, statistics = read_p99(cloudwatch, start, args.minutes)
        read_s = time.perf_counter() - began
        print(f"put: {put_s:.2f} s   read p99 (GetMetricData + GetMetricStatistics): {read_s:.2f} s")
        print(f"p99 per minute (GetMetricData, first 5): {data[:5]}  ({len(data)} points)")
        print(f"p99 per minute (GetMetricStatistics, first 5): {statistics[:5]}  ({len(statistics)} points)")

        aws.reset()
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.take_snapshot()
        put(cloudwatch, members)
        gc.collect()
        stored = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(baseline, "filename"))
        read_p99(cloudwatch, start, args.minutes)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory held after the put: {stored / 1e6:.1f} MB   peak while putting and reading: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
