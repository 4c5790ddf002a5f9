"""polyvlm.eval: multilingual benchmark evaluation (tasks, metrics, answer extraction, backends, runner, report).

`polyvlm eval` is the command line; `polyvlm.eval.runner.evaluate` the library entry point."""
