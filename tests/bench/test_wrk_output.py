"""The bench's reading of wrk's report (the BENCH_JSON line printed by bench/wrk/requests.lua)."""

from __future__ import annotations

import pytest

from bench.loadgen import Request, parse

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:18080
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   160.12ms   80.50ms   1.20s    70.00%
  Latency Distribution
     50%  150.00ms
  2000 requests in 10.00s, 3.10MB read
Requests/sec:    200.00
BENCH_JSON {"duration_us":10000000,"requests":2000,"bytes":3100000,"socket_errors":{"connect":0,"read":1,"write":0,"timeout":2},"status_errors":5,"latency_us":{"p50":150000.0,"p90":250000.0,"p95":300000.0,"p99":500000.0,"max":1200000.0,"mean":160120.0},"statuses":{"201":1990,"409":5,"302":5},"wrapped":0,"samples":["{\\"title\\": \\"Conflict\\"}"]}
"""


def test_parse_reads_throughput_percentiles_and_errors() -> None:
    result = parse(WRK_OUTPUT)
    assert result.requests == 2000
    assert result.per_second == pytest.approx(200.0)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (150.0, 300.0, 500.0)
    # Errors are every non-2xx answer (3xx too, which wrk itself does not count) and socket errors.
    assert result.non_2xx == 10
    assert result.socket_errors == 3
    assert result.errors == 13
    assert result.samples == ['{"title": "Conflict"}']


def test_parse_refuses_output_without_the_json_line() -> None:
    with pytest.raises(ValueError, match="BENCH_JSON"):
        parse("Running 10s test @ http://127.0.0.1:1\n")


def test_request_lines_are_tab_separated_and_single_line() -> None:
    line = Request("POST", "/x", token=3, idempotent=True, body='{"a": 1}').line()
    assert line.split("\t") == ["POST", "/x", "3", "i", '{"a": 1}']
    with pytest.raises(ValueError, match="one line"):
        Request("POST", "/x", body="a\tb").line()
