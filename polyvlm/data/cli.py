"""`polyvlm data validate|stats|mix|convert`: the command-line face of polyvlm.data."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from polyvlm.data.formats import FORMATS, writable_formats
from polyvlm.data.records import RecordError


def atomic_write_text(path: Path, text: str) -> None:
    from polyvlm.utils import atomic_write_text as write  # polyvlm.utils imports torch: only when writing

    write(path, text)

USAGE = """usage: polyvlm data VERB [args]

verbs:
  validate  check every record; report problems with file, line, id, code (exit 1 on errors)
  stats     records, turns, modality mix, languages, lengths, sources; optional PNG plot
  mix       materialise a mixture YAML as JSONL or Parquet shards
  convert   convert between JSON, JSONL, Parquet, OpenAI messages, VLMEvalKit TSV, HF datasets"""


def _validate(argv: list[str]) -> int:
    from polyvlm.data.validate import ValidateOptions, Validator

    ap = argparse.ArgumentParser(prog="polyvlm data validate", description="Check every record of the given files.")
    ap.add_argument("paths", nargs="+", help="data files (.json, .jsonl, .parquet, .tsv, .gz/.zst) or directories")
    ap.add_argument("--image-root", help="directory media paths are resolved under (default: each file's directory)")
    ap.add_argument("--report", help="write the full JSON report here")
    ap.add_argument("--check-media", action="store_true", help="open every media file (existence, escape, decoding, size)")
    ap.add_argument("--max-pixels", type=int, default=None, help="largest image allowed, in pixels (default: PIL's 89,478,485)")
    ap.add_argument("--tokenizer", help="local tokenizer directory: enables the too_long check")
    ap.add_argument("--max-length", type=int, default=2048, help="maximum tokens per sample after placeholder expansion")
    ap.add_argument("--tokens-per-image", type=int, default=576, help="tokens one <image> expands to (576: 336px / 14)")
    ap.add_argument("--examples", type=int, default=20, help="examples kept per problem code in the report")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    opts = ValidateOptions(image_root=a.image_root, check_media=a.check_media, tokenizer=a.tokenizer,
                           max_length=a.max_length, examples=a.examples, progress=not a.quiet)
    if a.max_pixels:
        opts.max_pixels = a.max_pixels
    opts.media_tokens["image"] = a.tokens_per_image
    rep = Validator(opts).run(a.paths)
    d = rep.to_dict()
    if a.report:
        atomic_write_text(Path(a.report), json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    print(f"{d['records']:,} records in {len(d['files'])} file(s), {d['seconds']:.1f} s: "
          f"{d['errors']:,} error(s), {d['warnings']:,} warning(s), {d['records_with_errors']:,} record(s) with errors")
    if d["by_code"]:
        width = max(len(c) for c in d["by_code"])
        print(f"\n{'code'.ljust(width)}  severity  {'count':>9}  first example")
        for code, v in d["by_code"].items():
            ex = v["examples"][0] if v["examples"] else {}
            at = (f"{ex.get('file')}:{ex['line']}" if ex.get("line") is not None
                  else f"{ex.get('file')}#{ex['index']}" if (ex.get("index") or 0) >= 0 else str(ex.get("file")))  # -1: the file
            rid = f" id={ex['id']}" if ex.get("id") is not None else ""
            print(f"{code.ljust(width)}  {v['severity']:<8}  {v['count']:>9,}  {at}{rid}: {ex.get('message', '')}")
    if d["language_normalised"]:
        print("\nlanguage tags normalised: " + ", ".join(f"{k} ({n})" for k, n in d["language_normalised"].items()))
    return 0 if d["ok"] else 1


def _stats(argv: list[str]) -> int:
    from polyvlm.data.stats import compute_stats

    ap = argparse.ArgumentParser(prog="polyvlm data stats", description="Describe a dataset: counts, modalities, languages, lengths. "
                                 "Exits 1 when there is no readable record (the outputs are still written).")
    ap.add_argument("paths", nargs="+", help="data files or directories")
    ap.add_argument("--plot", help="write a PNG with bar charts and histograms here")
    ap.add_argument("--json", help="write the statistics as JSON here")
    ap.add_argument("--tokenizer", help="local tokenizer directory: lengths in tokens instead of characters")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    try:
        st = compute_stats(a.paths, tokenizer=a.tokenizer, progress=not a.quiet)
    except RecordError as e:
        print(f"polyvlm data stats: {e}", file=sys.stderr)
        return 1
    print(st.table())
    if a.plot:
        st.plot(a.plot)
        print(f"\nplot written to {a.plot}")
    if a.json:
        atomic_write_text(Path(a.json), json.dumps(st.to_dict(), indent=1, ensure_ascii=False) + "\n")
    if not st.records:  # the outputs above still say so; the exit status lets a script stop on it
        why = (f"all {st.unreadable:,} record(s) are unreadable (see polyvlm data validate)" if st.unreadable
               else "the files hold no records")
        print(f"polyvlm data stats: no records to describe in {', '.join(a.paths)}: {why}", file=sys.stderr)
        return 1
    return 0


def _mix(argv: list[str]) -> int:
    from polyvlm.config import ConfigError, add_overrides_argument, parse_args_with_overrides
    from polyvlm.data.langs import language_or_none
    from polyvlm.data.mix import Mixture, MixtureError, MixtureKeys, common_media_root, iter_rebased
    from polyvlm.data.readers import MIX_MANIFEST
    from polyvlm.data.writers import RecordWriter
    from polyvlm.utils import atomic_dir

    ap = argparse.ArgumentParser(prog="polyvlm data mix", description="Materialise a mixture YAML as shards.")
    ap.add_argument("mixture", help="mixture YAML (see polyvlm/data/mix.py for the format)")
    ap.add_argument("--out", required=True, help="output directory (replaced atomically)")
    ap.add_argument("--format", choices=writable_formats(), default="jsonl")
    ap.add_argument("--shard-size", type=int, default=100_000, help="records per shard")
    ap.add_argument("--seed", type=int, default=None, help="override the YAML's seed")
    ap.add_argument("--skip-bad", action="store_true", help="leave out records that do not parse (counted) instead of stopping")
    ap.add_argument("--quiet", action="store_true")
    add_overrides_argument(ap, "seed=3 shuffle=true datasets.0.sampling_strategy=first:10% languages.caps.en=500")
    try:
        a = parse_args_with_overrides(ap, argv, MixtureKeys)
    except ConfigError as e:
        print(f"polyvlm data mix: {e}", file=sys.stderr)
        return 2
    try:
        mixture = Mixture.from_yaml(a.mixture, a.seed, a.config_overrides)
        ds = mixture.resolve()
    except (MixtureError, RecordError) as e:
        print(f"polyvlm data mix: {e}", file=sys.stderr)
        return 1
    root, _ = common_media_root(ds)
    langs: Counter = Counter()
    shards: list[dict] = []
    skipped: list[RecordError] = []
    try:
        with atomic_dir(Path(a.out)) as tmp:
            bar = tqdm(total=len(ds), desc="mix", unit=" rec", disable=True if a.quiet else None)
            records = iter_rebased(ds, skipped.append if a.skip_bad else None)
            rec = next(records, None)
            while rec is not None or not shards:  # at least one shard, even when empty
                name = f"part-{len(shards):05d}.{FORMATS.get(a.format).suffixes[0]}"
                with RecordWriter(tmp / name, a.format) as w:
                    while rec is not None and w.count < a.shard_size:
                        langs[language_or_none(rec.language) or "none"] += 1
                        w.write(rec)
                        bar.update()
                        rec = next(records, None)
                shards.append({"file": name, "records": w.count})
            bar.close()
            manifest = {"mixture": str(a.mixture), "seed": mixture.seed, "overrides": a.config_overrides,
                        "records": sum(s["records"] for s in shards), "skipped": len(skipped), "image_root": str(root),
                        "shards": shards, "sources": ds.counts(), "languages": dict(langs.most_common())}
            atomic_write_text(tmp / MIX_MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    except RecordError as e:
        print(f"polyvlm data mix: bad record, nothing written (use --skip-bad to leave such records out): {e}", file=sys.stderr)
        return 1
    print(f"{manifest['records']:,} records in {len(shards)} shard(s) under {a.out}; media root {root}")
    for src, n in ds.counts().items():
        print(f"  {n:>10,}  {src}")
    if not manifest["records"]:  # written (an empty mixture is well-formed), but almost always a mistake
        print(f"polyvlm data mix: warning: {a.mixture} selects no records (its sources and sampling strategies give "
              "0); training from it will refuse an empty dataset", file=sys.stderr)
    if skipped:
        print(f"{len(skipped):,} bad record(s) skipped:")
    for e in skipped[:10]:
        print(f"  skipped {e}")
    return 0


def _convert(argv: list[str]) -> int:
    from polyvlm.data.readers import iter_records
    from polyvlm.data.writers import RecordWriter

    ap = argparse.ArgumentParser(prog="polyvlm data convert", description="Convert records between formats, streaming.")
    ap.add_argument("input", help="a .json/.jsonl/.parquet/.tsv file (.gz/.zst ok) or a saved HF dataset directory")
    ap.add_argument("--to", choices=writable_formats(), required=True)
    ap.add_argument("--out", required=True, help="output file (.jsonl, .jsonl.gz, .jsonl.zst or .parquet)")
    ap.add_argument("--from", dest="fmt", choices=FORMATS.names(), help="input format (default: from the suffix)")
    ap.add_argument("--skip-bad", action="store_true", help="skip records that do not parse (counted) instead of stopping")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    skipped: list[RecordError] = []
    try:
        with RecordWriter(Path(a.out), a.to) as w:
            recs = iter_records(a.input, a.fmt, on_error=skipped.append if a.skip_bad else None)
            for rec in tqdm(recs, desc="convert", unit=" rec", disable=True if a.quiet else None, mininterval=1.0):
                w.write(rec)
    except RecordError as e:
        print(f"polyvlm data convert: {e}\nnothing was written (use --skip-bad to skip such records)", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"polyvlm data convert: {e}", file=sys.stderr)
        return 2
    print(f"{w.count:,} records written to {a.out}" + (f"; {len(skipped):,} bad record(s) skipped" if skipped else ""))
    for e in skipped[:10]:
        print(f"  skipped {e}")
    return 0


VERBS = {"validate": _validate, "stats": _stats, "mix": _mix, "convert": _convert}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] not in VERBS:
        print(f"polyvlm data: unknown verb '{argv[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    return VERBS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
