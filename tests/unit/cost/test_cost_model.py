"""The cost model's arithmetic against hand-worked cases. Each expected value is written out as its derivation
(month = 730 h = 30.4167 days = 2,628,000 s; prices from cost.model's table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cost import Workload, estimate_monthly_cost, instances_for_backlog, load_config
from cost.__main__ import main
from stacks.config import AppConfig

REPO = Path(__file__).resolve().parents[3]
DEFAULTS = AppConfig()  # same values as cdk.json (checked below)


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-6, abs=1e-9)


def test_config_comes_from_cdk_json_without_feature_flags():
    assert load_config(REPO / "cdk.json") == DEFAULTS
    assert load_config(REPO / "cdk.json", {"lambda_memory_mb": "1024"}).lambda_memory_mb == 1024


def test_lambda_path_hand_worked():
    # 240 videos/day x 730/24 days = 7,300 messages. Job: 1 s overhead + 50 MB / 50 MB/s + 60 s x 0.5 / vCPUs,
    # vCPUs = 2048 MB / 1769 MB = 1.15772 -> 2 + 25.9131 = 27.9131 s.
    b = estimate_monthly_cost(Workload(240, 50, 60, "lambda"), DEFAULTS)
    job = 1 + 50 / 50 + 60 * 0.5 / (2048 / 1769)
    assert job == pytest.approx(27.9131, abs=1e-4)
    # GB-s = 7,300 x 27.9131 x 2 GB = 407,531.6; arm64 $0.0000133334 -> $5.434
    assert b.quantities["Lambda GB-seconds"] == approx(7300 * job * 2)
    assert b.lines["Lambda GB-seconds"] == pytest.approx(5.434, abs=1e-3)
    # 240/day = 0.0139 arrivals per 5 s window -> 1 message per invocation -> 7,300 invocations x $0.20/M
    assert b.quantities["Lambda requests"] == approx(7300)
    assert b.lines["Lambda requests"] == approx(7300 * 0.20 / 1e6)
    # SQS: 7,300 sends + 7,300 receives + 7,300 deletes + 5 pollers x 2,628,000 s / 20 s = 657,000 empty receives
    #      = 678,900 requests x $0.40/M = $0.27156
    assert b.quantities["SQS requests (64 KB chunks)"] == approx(678_900)
    assert b.lines["SQS requests (64 KB chunks)"] == approx(0.27156)
    # KMS: min(7,300, 2,628,000 / 3,600 = 730) x (2 x 1 producer + 1 consumer) = 2,190 x $0.03/10k; key $1
    assert b.quantities["KMS requests"] == approx(2190)
    assert b.lines["KMS requests"] == approx(0.00657)
    assert b.lines["KMS customer-managed key"] == 1.0
    # S3: 7,300 x 50 MB x 1.5 / 1024 = 534.668 GB x $0.023 = $12.2974; PUTs 7,300 x 4 = 29,200 x $0.005/1000 =
    #     $0.146; GETs 7,300 x 2 = 14,600 x $0.0004/1000 = $0.00584
    assert b.lines["S3 storage (GB-month, 1 month kept)"] == pytest.approx(12.2974, abs=1e-4)
    assert b.lines["S3 PUT requests"] == approx(0.146)
    assert b.lines["S3 GET/HEAD requests"] == approx(0.00584)
    assert "EC2 c7g.large instance-hours" not in b.lines
    assert b.total == approx(sum(b.lines.values()))
    assert b.total == pytest.approx(5.434 + 0.00146 + 0.27156 + 0.00657 + 1 + 12.2974 + 0.146 + 0.00584, abs=2e-3)


def test_fleet_sparse_arrivals_scale_to_zero_between_videos():
    # 24 videos/day: one every 3,600 s, longer than job (32 s) + scale-in (10 min) -> one instance episode each.
    # c7g.large: 2 vCPU / worker_concurrency 2 = 1 vCPU per job -> 1 + 1 + 60 x 0.5 = 32 s.
    # Episode = 120 s boot + 32 s + 600 s = 752 s; 730 videos x 752 s / 3600 = 152.489 h x $0.0725 = $11.0554
    b = estimate_monthly_cost(Workload(24, 50, 60, "fleet"), DEFAULTS)
    assert b.quantities["EC2 c7g.large instance-hours"] == approx(730 * 752 / 3600)
    assert b.lines["EC2 c7g.large instance-hours"] == pytest.approx(11.0554, abs=1e-4)
    # EBS: 152.489 / 730 = 0.20889 instances on average x 8 GB x $0.08 = $0.13369
    assert b.lines["EBS gp3 root volumes (GB-month)"] == pytest.approx(0.13369, abs=1e-5)
    # isolated: 6 endpoints (SQS, Auto Scaling, Logs, SSM x 3) x 2 AZ x 730 h = 8,760 endpoint-AZ-hours x $0.01
    assert b.lines["VPC interface endpoint-AZ-hours"] == approx(87.6)
    # SQS: 730 sends + 73 receives of 10 + 73 batch deletes + 152.489 h x 3600 / 20 = 27,448 empty receives
    assert b.quantities["SQS requests (64 KB chunks)"] == approx(730 + 73 + 73 + 730 * 752 / 20)
    # KMS: min(730 messages, 730 reuse periods) x 3 principals' calls = 2,190
    assert b.quantities["KMS requests"] == approx(2190)


def test_fleet_continuous_arrivals_public_network():
    # 10,000/day = 0.11574/s; busy workers = 0.11574 x 32 s = 3.7037 -> ceil(3.7037 / 2 per instance) = 2
    # instances; backlog 3.7 crosses only the first step (+1). 2 x 730 h = 1,460 h x $0.0725 = $105.85.
    config = load_config(REPO / "cdk.json", {"network_mode": "public"})
    b = estimate_monthly_cost(Workload(10_000, 50, 60, "fleet"), config)
    assert b.quantities["EC2 c7g.large instance-hours"] == approx(1460)
    assert b.lines["EC2 c7g.large instance-hours"] == approx(105.85)
    # public: each running instance's IPv4 address, 1,460 h x $0.005 = $7.30; no endpoints
    assert b.lines["public IPv4 address-hours"] == approx(7.30)
    assert "VPC interface endpoint-AZ-hours" not in b.lines
    # empty receives: idle share 1 - 3.7037 / (2 x 2) = 0.074074, x 2 instances x 2,628,000 / 20 = 19,466.7
    assert b.quantities["  of which empty receives"] == pytest.approx(19_466.7, abs=0.1)


def test_fleet_capped_by_max_instances_says_so():
    # 100,000/day x 32 s / 86,400 = 37.04 busy -> 19 instances needed, worker_max_instances = 4
    b = estimate_monthly_cost(Workload(100_000, 50, 60, "fleet"), DEFAULTS)
    assert b.quantities["EC2 c7g.large instance-hours"] == approx(4 * 730)
    assert any("needs 19 instances" in n for n in b.notes)


def test_step_scaling_levels():
    # thresholds (1, 20, 100) add (1, 2, 4), capped at 4 instances
    assert [instances_for_backlog(b, DEFAULTS) for b in (0, 1, 19, 20, 99, 100)] == [0, 1, 1, 3, 3, 4]


def test_sqs_64kb_chunks_and_lambda_batching():
    # 1,000,000/day: 57.9 arrivals per 5 s window -> full batches of 10 -> 3,041,666.7 invocations
    b = estimate_monthly_cost(Workload(1_000_000, 1, 1, "lambda"), DEFAULTS)
    assert b.quantities["Lambda requests"] == approx(1_000_000 * 730 / 24 / 10)
    # A 100 KB body is 2 chunks. At 24/day each Lambda receive carries 1 message: M = 24 x 730 / 24 = 730 ->
    # 730 sends x 2 + 730 receives x 2 + 730 deletes + 657,000 empty receives = 660,650
    big = estimate_monthly_cost(Workload(24, 1, 1, "lambda", notification_bytes=100_000), DEFAULTS)
    assert big.quantities["SQS requests (64 KB chunks)"] == approx(730 * 2 + 730 * 2 + 730 + 657_000)
    # The fleet receives 10 at a time: 1,000,000 bytes = ceil(15.26) = 16 chunks per receive, 73 receives;
    # episodes (120 + 1 + 0.02 + 0.5 s job + 600 s) x 730 / 20 s of empty long polls
    fleet = estimate_monthly_cost(Workload(24, 1, 1, "fleet", notification_bytes=100_000), DEFAULTS)
    episode = 120 + (1 + 1 / 50 + 1 * 0.5 / 1) + 600
    assert fleet.quantities["SQS requests (64 KB chunks)"] == approx(730 * 2 + 73 * 16 + 73 + 730 * episode / 20)


def test_lambda_timeout_warning():
    # 1 hour of video: 2 + 3600 x 0.5 / 1.1577 = 1,556.8 s, over the 120 s timeout
    b = estimate_monthly_cost(Workload(10, 50, 3600, "lambda"), DEFAULTS)
    assert any("exceeds lambda_timeout_seconds=120" in n for n in b.notes)


def test_cli_prints_breakdown_and_writes_chart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    chart = tmp_path / "cost.png"
    args = ["--videos-per-day", "240", "--size-mb", "50", "--duration-s", "60", "--chart", str(chart)]
    assert main([*args, "--cdk-json", str(REPO / "cdk.json")]) == 0
    out = capsys.readouterr().out
    assert "lambda path: 240 videos/day" in out and "fleet path: 240 videos/day" in out
    assert out.count("TOTAL") == 2
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
