"""Benchmark: the queue worker against two hand-written consumers, on one moto server over HTTP.

For each consumer, N messages go on a fresh queue and the clock runs until the consumer has deleted them all.
Processing is a no-op, so the figures measure the SQS side: messages per second and SQS requests per message
(counted with a botocore ``before-send`` hook, retries included, as AWS bills them).

  worker   QueueWorker, 10 job slots (receive up to 10, DeleteMessageBatch across jobs, heartbeats, ...)
  naive    receive 1, process, DeleteMessage, repeat
  batched  receive 10, process them, DeleteMessageBatch, repeat (the floor: 0.2 requests per message)

Targets: the worker at most 0.25 requests/message and at least the batched loop's throughput.
Writes build/worker.json (bench/results/worker.json with --update-bench).

    .venv/bin/python bench/worker_bench.py [--messages 300] [--rounds 5] [--update-bench]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402

from bench import bench_cli  # noqa: E402  (the repository root, just put on sys.path)
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions  # noqa: E402
from sqs_decoupling.worker_fleet.worker.counters import Counters, count_requests  # noqa: E402
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message  # noqa: E402
from tools.localcloud.server import DUMMY_CLIENT_ARGS, moto_server  # noqa: E402

# Long polls return as soon as messages are there; a short wait only shortens the worker's final empty poll.
WAIT_SECONDS = 2


def noop(message: Message) -> JobOutcome:
    return JobOutcome.DONE


def run_worker(sqs: Any, url: str, n: int) -> Callable[[], None]:
    worker = QueueWorker(
        sqs, url, noop, WorkerOptions(concurrency=10, wait_seconds=WAIT_SECONDS, visibility_timeout=30)
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while worker.counters.get("deleted") < n:
        time.sleep(0.005)

    def stop() -> None:
        # Not timed: shutdown waits for the poll in progress (up to WAIT_SECONDS), which is not throughput.
        # Its requests are still counted.
        worker.request_stop("benchmark done")
        thread.join()

    return stop


def run_naive(sqs: Any, url: str, n: int) -> None:
    """Receive one, process it, delete it."""
    done = 0
    while done < n:
        for raw in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=WAIT_SECONDS).get(
            "Messages", []
        ):
            noop(Message.from_sqs(raw))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])
            done += 1


def run_batched(sqs: Any, url: str, n: int) -> None:
    """Receive up to ten, process them, delete them in one call."""
    done = 0
    while done < n:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS).get(
            "Messages", []
        )
        for raw in received:
            noop(Message.from_sqs(raw))
        if received:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": raw["ReceiptHandle"]} for i, raw in enumerate(received)],
            )
            done += len(received)


# Each returns once all n messages are deleted, with an optional (untimed) clean-up to call afterwards.
CONSUMERS: dict[str, Callable[[Any, str, int], Callable[[], None] | None]] = {
    "worker": run_worker,
    "naive": run_naive,
    "batched": run_batched,
}


def one_run(endpoint: str, name: str, n: int) -> dict[str, float]:
    setup = boto3.client("sqs", endpoint_url=endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    url = setup.create_queue(QueueName=f"bench-{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for start in range(0, n, 10):
        setup.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"job {start + i}"} for i in range(min(10, n - start))],
        )
    sqs = boto3.client("sqs", endpoint_url=endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    counters = Counters()
    count_requests(sqs, counters)
    started = time.perf_counter()
    clean_up = CONSUMERS[name](sqs, url, n)
    seconds = time.perf_counter() - started
    if clean_up is not None:
        clean_up()
    left = setup.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, left
    setup.delete_queue(QueueUrl=url)
    requests = counters.total_requests("sqs")
    return {
        "seconds": round(seconds, 3),
        "messages_per_second": round(n / seconds, 1),
        "requests": requests,
        "requests_per_message": round(requests / n, 4),
        "requests_by_operation": counters.requests(),  # type: ignore[dict-item]
    }


def main() -> None:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--messages", type=bench_cli.bounded("--messages", 1, 100_000, integer=True), default=300)
        parser.add_argument("--rounds", type=bench_cli.bounded("--rounds", 1, 100, integer=True), default=5)

    args, dest = bench_cli.parse(__doc__, "worker.json", configure)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONSUMERS}
    with moto_server() as endpoint:
        # The first requests to a fresh server are slow (moto sets up its backends); keep that out of the figures.
        for name in CONSUMERS:
            one_run(endpoint, name, 30)
        for round_number in range(args.rounds):
            # Rotate the order: moto gets slower as it serves more, so no consumer always goes last.
            names = list(CONSUMERS)
            names = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in names:
                runs[name].append(one_run(endpoint, name, args.messages))
                print(f"round {round_number + 1} {name:8} {runs[name][-1]}", flush=True)

    summary = {
        name: {
            "messages_per_second_median": statistics.median(r["messages_per_second"] for r in results),
            "requests_per_message_median": statistics.median(r["requests_per_message"] for r in results),
            "runs": results,
        }
        for name, results in runs.items()
    }
    worker, batched = summary["worker"], summary["batched"]
    report = {
        "benchmark": "queue consumers, no-op jobs, one moto ThreadedMotoServer over HTTP",
        "messages_per_run": args.messages,
        "rounds": args.rounds,
        "long_poll_wait_seconds": WAIT_SECONDS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "consumers": summary,
        "targets": {
            "worker_requests_per_message_at_most_0.25": worker["requests_per_message_median"] <= 0.25,
            "worker_throughput_at_least_batched": worker["messages_per_second_median"]
            >= batched["messages_per_second_median"],
        },
    }
    for name, figures in summary.items():
        print(
            f"{name:8} {figures['messages_per_second_median']:7.1f} msg/s  "
            f"{figures['requests_per_message_median']:.3f} requests/msg"
        )
    print(json.dumps(report["targets"]))
    bench_cli.write_result(dest, report)


if __name__ == "__main__":
    main()
