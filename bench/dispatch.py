"""Messages per second through the Postmark provider to a local Postmark stand-in, against a bare
httpx loop posting the same payloads to the same stand-in.

    python bench/dispatch.py                      # 20,000 messages in batches of 500
    python bench/dispatch.py --messages 50000 --rounds 9 --in-process

The stand-in (bench/postmark_sink.py) runs in a subprocess by default so it does not share the
interpreter lock with the client being measured; --in-process runs it in a thread instead. Both
paths use one pooled keep-alive connection. The provider path is the real one (payload building,
pacing bookkeeping, per-message ErrorCode parsing, results); the bare loop builds the same JSON,
posts it and counts ErrorCode 0. A message builds its MIME only when a provider asks for it, and
the Postmark path never does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from postmark_sink import PostmarkSink

from runner.providers.base import Outcome, OutgoingMessage
from runner.providers.postmark import PostmarkProvider

SINK = Path(__file__).resolve().parent / "postmark_sink.py"  # imported above: a script's folder is on sys.path
TOKEN = "bench-token"
SENT_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def build_messages(count: int) -> list[OutgoingMessage]:
    messages = []
    for n in range(count):
        headers = {"List-Unsubscribe": f"<https://shop.example.com/u/t{n}>, <mailto:u@shop.example.com?subject=t{n}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                   "X-Campaign-ID": "winback", "X-Send-ID": str(n)}
        messages.append(OutgoingMessage(
            idempotency_key=f"bench-{n}", campaign_id="winback", send_id=n, to=f"customer{n}@example.com",
            from_="Shop <hello@shop.example.com>", subject=f"We miss you, customer {n}",
            html=f"<p>Hello customer {n}, here is 15% off: <b>COME-BACK-{n}</b></p>" + "<p>…</p>" * 20,
            text=f"Hello customer {n}, here is 15% off: COME-BACK-{n}\n" + "…\n" * 20,
            date=SENT_AT, headers=headers))
    return messages


def chunks(items: Sequence[OutgoingMessage], size: int) -> Iterator[Sequence[OutgoingMessage]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def via_provider(url: str, messages: list[OutgoingMessage], batch: int) -> float:
    with PostmarkProvider(TOKEN, base_url=url, batch_size=batch) as provider:
        provider.send_batch(messages[:1])  # connect before the clock starts
        start = time.perf_counter()
        accepted = 0
        for chunk in chunks(messages, batch):
            accepted += sum(r.outcome is Outcome.ACCEPTED for r in provider.send_batch(chunk))
        elapsed = time.perf_counter() - start
    assert accepted == len(messages), accepted
    return elapsed


def via_bare_httpx(url: str, messages: list[OutgoingMessage], batch: int) -> float:
    headers = {"X-Postmark-Server-Token": TOKEN, "Accept": "application/json"}
    with httpx.Client(timeout=10) as client:
        client.post(f"{url}/email/batch", json=[], headers=headers)  # connect before the clock starts
        start = time.perf_counter()
        accepted = 0
        for chunk in chunks(messages, batch):
            payload = [{"From": m.from_, "To": m.to, "Subject": m.subject, "HtmlBody": m.html, "TextBody": m.text,
                        "MessageStream": "broadcast", "Tag": m.campaign_id, "Metadata": m.metadata,
                        "Headers": [{"Name": k, "Value": v} for k, v in m.headers.items()]} for m in chunk]
            response = client.post(f"{url}/email/batch", json=payload, headers=headers)
            response.raise_for_status()
            accepted += sum(entry["ErrorCode"] == 0 for entry in response.json())
        elapsed = time.perf_counter() - start
    assert accepted == len(messages), accepted
    return elapsed


@contextmanager
def sink(in_process: bool) -> Iterator[str]:
    if in_process:
        with PostmarkSink(TOKEN, record=False) as running:
            yield running.url
        return
    process = subprocess.Popen([sys.executable, str(SINK), "--token", TOKEN],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="messages per request (Postmark allows 500)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per path (median and best reported)")
    parser.add_argument("--in-process", action="store_true", help="run the sink in a thread of this process")
    args = parser.parse_args()

    messages = build_messages(args.messages)
    paths: dict[str, Callable[[str, list[OutgoingMessage], int], float]] = {
        "provider": via_provider, "bare httpx": via_bare_httpx}
    timings: dict[str, list[float]] = {name: [] for name in paths}
    with sink(args.in_process) as url:
        for _ in range(args.rounds):
            for name, run in paths.items():  # interleaved, so drift hits both alike
                timings[name].append(run(url, messages, args.batch))
    median = {name: args.messages / statistics.median(times) for name, times in timings.items()}
    best = {name: args.messages / min(times) for name, times in timings.items()}
    where = "thread" if args.in_process else "subprocess"
    print(f"{args.messages:,} messages in batches of {args.batch}, sink in a {where}, {args.rounds} rounds")
    for name, times in timings.items():
        print(f"  {name:<11} median {median[name]:>7,.0f} messages/s, best {best[name]:>7,.0f} messages/s "
              f"(rounds {', '.join(f'{t:.2f}' for t in times)} s)")
    print(f"  provider / bare: median {median['provider'] / median['bare httpx']:.2f}, "
          f"best {best['provider'] / best['bare httpx']:.2f}")


if __name__ == "__main__":
    main()
