"""Built-in synth stages, registered by name on import (see `base.get_stage`)."""

from polyvlm.synth.stages import conversation, cultural, dedup, translate  # noqa: F401 - registration
from polyvlm.synth.stages.base import STAGES, Result, Stage, StageContext, get_stage, register

__all__ = ["STAGES", "Result", "Stage", "StageContext", "get_stage", "register"]
