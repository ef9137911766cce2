"""Writes the notebooks (outputs stripped); ``tests/test_notebooks.py`` executes them.

    .venv/bin/python notebooks/build.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """import os, sys
from pathlib import Path
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("CTINSIGHTS_SHARED", ROOT.parent / "shared"))
import matplotlib.pyplot as plt"""

QUICKSTART = [
    new_markdown_cell("# 01 - Quick start\nReplay a small simulated scenario (3 days, 2 accounts x "
                      "2 Regions, 7 injected bursts), plot call rate against baseline for the "
                      "APIs that got insights, with the insight spans shaded, and look at the "
                      "records."),
    new_code_cell(SETUP),
    new_code_cell("""from collections import Counter
from insights import EngineConfig, InsightEngine, decode_message
from insights.events import event_seconds
from streams.lab.simulate import Scenario, generate, render

scenario = Scenario(days=3, reads_per_minute=0.5, anomaly_day=2)
lines = list(render(generate(scenario)))
events = [e for line in lines for e in decode_message(line).events]
engine = InsightEngine(EngineConfig())
records = [r.to_dict() for r in engine.process_many(events) + engine.flush()]
print(len(events), "events,", engine.keys_tracked, "baselines,", len(records), "insight records")"""),
    new_code_cell("""per_minute = Counter()
for e in events:
    per_minute[(e.recipient_account_id, e.aws_region, e.event_name, e.error_code or "",
                event_seconds(e) // 60)] += 1
starts = [r for r in records if r["insightDetails"]["state"] == "Start"][:4]
fig, axes = plt.subplots(len(starts), 1, figsize=(10, 2.4 * len(starts)))
for ax, start in zip(axes, starts):
    d = start["insightDetails"]
    key = (start["recipientAccountId"], start["awsRegion"], d["eventName"], d.get("errorCode", ""))
    t0 = int(engine.newest_watermark() or 0) - 36 * 60
    xs = list(range(t0, t0 + 36 * 60))
    ax.plot([(x - t0) / 60 for x in xs], [per_minute.get((*key, x), 0) for x in xs], lw=0.6)
    ax.axhline(d["insightContext"]["statistics"]["baseline"]["average"], color="k", ls="--")
    end = next((r for r in records if r["sharedEventID"] == start["sharedEventID"]
                and r["insightDetails"]["state"] == "End"), start)
    from insights.timeparse import parse_epoch_seconds as p
    ax.axvspan((p(start["eventTime"]) // 60 - t0) / 60, (p(end["eventTime"]) // 60 + 1 - t0) / 60,
               color="red", alpha=0.25)
    ax.set_title(f"{d['eventName']} {d.get('errorCode', '')} {key[0]}/{key[1]}", fontsize=9)
    ax.set_xlabel("hours before the end of input")
fig.tight_layout()"""),
    new_code_cell("""import json
print(json.dumps(records[0], indent=1)[:2500])"""),
    new_code_cell("""for r in records:
    d = r["insightDetails"]
    who = [a["insight"][:1] for a in d["insightContext"]["attributions"]
           if a["attribute"] == "userIdentityArn"][0]
    print(d["state"], r["eventTime"], d["eventName"], d.get("errorCode", ""), who)"""),
]

EVALUATION = [
    new_markdown_cell("# 02 - Evaluation\nThe sensitivity sweep on a labelled scenario, and the "
                      "detector core on the Numenta Anomaly Benchmark next to the published "
                      "scoreboard. (`benchmarks/` has the full-size versions.)"),
    new_code_cell(SETUP),
    new_code_cell("""from insights import EngineConfig, InsightEngine, Sensitivity, decode_message
from streams.lab.evaluation import evaluate
from streams.lab.simulate import Scenario, generate, render

scenario = Scenario(days=9, reads_per_minute=1.0)
lines = list(render(generate(scenario)))
events = [e for line in lines for e in decode_message(line).events]
rows = []
for level in Sensitivity:
    engine = InsightEngine(EngineConfig(sensitivity=level))
    records = [r.to_dict() for r in engine.process_many(events) + engine.flush()]
    result = evaluate(records, scenario.labels, key_days=engine.keys_tracked * 8,
                      after=scenario.start + 86_400)
    rows.append((level.value, result.recall, result.false_per_1000_key_days,
                 result.median_latency_minutes))
    print(f"{level.value:<7} recall {result.recall:.2f}  false/1000 key-days "
          f"{result.false_per_1000_key_days:.2f}  median latency {result.median_latency_minutes:.0f} min")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([r[2] for r in rows], [r[1] for r in rows], "o-")
for name, recall, false, _ in rows:
    ax.annotate(name, (false, recall))
ax.set_xlabel("false insights per 1,000 key-days"); ax.set_ylabel("recall")"""),
    new_markdown_cell("## The hard suite, per kind\nOne seed of `hard_scenario` on 2 account-Regions "
                      "(an organization's background: IaC clumps, people by hand, CI hours, a "
                      "periodic job, instance agents; 12 labelled kinds), drop insights on. Per "
                      "kind: found and detection latency at each sensitivity; then a plot per "
                      "missed label and per false insight at medium (calls per minute of its key, "
                      "the labelled window or the insight's start marked). "
                      "`benchmarks/quality_bench.py --suite hard` has the 3-seed version."),
    new_code_cell("""import dataclasses
from collections import Counter
from insights import InsightSelector, parse_epoch_seconds
from streams.lab.simulate import hard_scenario

hard = dataclasses.replace(hard_scenario(7), regions=("us-east-1",))
hard_events = [e for line in render(generate(hard), seed=7) for e in decode_message(line).events]
drops = (InsightSelector(insight_type="ApiCallRateInsight", drops=True),
         InsightSelector(insight_type="ApiErrorRateInsight"))
results = {}
for level in Sensitivity:
    engine = InsightEngine(EngineConfig(sensitivity=level, selectors=drops))
    records = [r.to_dict() for r in engine.process_many(hard_events) + engine.flush()]
    results[level.value] = evaluate(records, hard.labels, key_days=engine.keys_tracked * 13,
                                    after=hard.start + 86_400)
print(f"{'kind':<26}" + "".join(f"{level:>20}" for level in results))
for kind in results["medium"].by_kind():
    cells = []
    for level, result in results.items():
        found, total, latencies = result.by_kind()[kind]
        cells.append(f"{found}/{total}" + (f", {min(latencies):.0f} min" if latencies else ""))
    print(f"{kind:<26}" + "".join(f"{c:>20}" for c in cells))
for level, result in results.items():
    print(f"{level}: false insights per 1,000 key-days {result.false_per_1000_key_days:.2f}")"""),
    new_code_cell("""def per_minute(account, region, source, name, error):
    counts = Counter()
    for e in hard_events:
        if (e.recipient_account_id, e.aws_region, e.event_source, e.event_name) != (
                account, region, source, name):
            continue
        if (error and e.error_code == error) or (not error and not e.read_only):
            counts[parse_epoch_seconds(e.event_time) // 60] += 1
    return counts

medium = results["medium"]
cases = [(f"missed: {label.kind}", label.account, label.region, *label.keys[0][:2],
          label.keys[0][3], label.onset, label.end)
         for label in hard.labels if not medium.found[f"{label.kind}@{label.account}/{label.region}"]]
for record in medium.false_insights[:6]:
    d = record["insightDetails"]
    at = parse_epoch_seconds(record["eventTime"])
    cases.append((f"false: {d['eventName']} {d.get('errorCode', '')}", record["recipientAccountId"],
                  record["awsRegion"], d["eventSource"], d["eventName"], d.get("errorCode", ""),
                  at, at + 60))
fig, axes = plt.subplots(len(cases), 1, figsize=(9, 2.2 * len(cases)), squeeze=False)
for ax, (title, account, region, source, name, error, onset, end) in zip(axes[:, 0], cases):
    counts = per_minute(account, region, source, name, error)
    first = onset // 60 - 180
    minutes = range(first, end // 60 + 180)
    ax.bar([m - first for m in minutes], [counts[m] for m in minutes], width=1.0)
    ax.axvspan(onset // 60 - first, end // 60 - first, alpha=0.2, color="red")
    ax.set_title(f"{title} ({name}, {region})", fontsize=9)
    ax.set_ylabel("calls / min")
axes[-1, 0].set_xlabel("minutes from 3 hours before")
fig.tight_layout()"""),
    new_code_cell("""from insights.series import series_scores
from streams.lab.nab import debounced, load_corpus, load_profiles, sweep

nab = SHARED / "datasets" / "nab"
files = load_corpus(nab)
scores = [series_scores(f.values, half_life=5000.0) for f in files]
ours = {}
for profile in load_profiles(nab):
    ours[profile.name] = sweep(files, scores, profile, detect=lambda s, t: debounced(s, t, 200))[1]
print({k: round(v, 1) for k, v in ours.items()})
board = {"ARTime": 74.9, "Numenta HTM": 70.5, "CAD OSE": 69.9, "AWS RCF": 51.7,
         "Twitter ADVec": 47.1, "windowed Gaussian": 39.6, "ctinsights core": ours["standard"]}
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(board), list(board.values())); ax.set_xlabel("NAB standard profile")"""),
]

REAL_LOGS = [
    new_markdown_cell("# 03 - Real CloudTrail logs\nThe shared public datasets: event rates, "
                      "insights found, and every record accounted for (analysed, not analysed, "
                      "duplicate, late, or rejected with a reason)."),
    new_code_cell(SETUP),
    new_code_cell("""from collections import Counter
from insights import EngineConfig, InsightEngine
from streams.files import read_inputs

root = SHARED / "datasets" / "cloudtrail"
summary = {}
for name in sorted(p.name for p in root.iterdir() if p.is_dir()):
    engine = InsightEngine(EngineConfig())
    rejected, records, per_day = Counter(), [], Counter()
    for batch in read_inputs([str(root / name)]):
        rejected.update(r.reason.value for r in batch.result.rejections)
        per_day.update((e.event_time or e.at_timestamp or "")[:10] for e in batch.result.events)
        records += engine.process_many(batch.result.events)
    records += engine.flush()
    s = engine.stats
    summary[name] = per_day
    print(f"{name}: {s.events} events, analysed {s.analysed}, not analysed {s.not_analysed}, "
          f"duplicates {s.duplicates}, late {s.late}, rejected {dict(rejected) or 0}, "
          f"insight starts {sum(1 for r in records if r.state == 'Start')}")"""),
    new_code_cell("""days = summary["grycap-cloudtrail-tracker"]
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(range(len(days)), [days[d] for d in sorted(days)])
ax.set_yscale("log"); ax.set_title("GRyCAP teaching account: events per active day")
ax.set_xlabel("active day (68 days between 2014 and 2018)")"""),
]


def main() -> None:
    for name, cells in (("01-quickstart", QUICKSTART), ("02-evaluation", EVALUATION),
                        ("03-real-logs", REAL_LOGS)):
        notebook = new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        nbformat.write(notebook, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
