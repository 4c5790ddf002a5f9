"""polyvlm.data: records, streaming readers, random access, validation, statistics, mixtures, conversion.

records   the LLaVA conversation record (Record, Turn, parse_record, RecordError, resolve_media)
langs     BCP-47 normalisation of language tags (normalize_language); language identification (py3langid: language_status)
readers   iter_records / iter_raw over JSON, JSONL, Parquet, OpenAI messages, VLMEvalKit TSV, HF on disk
tsv       VLMEvalKit TSV rows (base64 images, options A-Z, image references) -> LLaVA dicts
index     RecordIndex: `index[i] -> Record` by byte offset or Parquet row group
validate  Validator / validate: every problem with file, line, id, code
stats     compute_stats: counts, modality mix, languages, lengths; table and PNG
mix       mixture YAML (LLaVA-NeXT sampling strategies, per-language caps/weights) -> MixtureDataset, records
dataset   LazyRecords: a torch Dataset decoding media per item, with the on_bad_record policy
writers   RecordWriter: JSONL (.gz/.zst) or Parquet, atomic
cli       `polyvlm data validate|stats|mix|convert`
"""
