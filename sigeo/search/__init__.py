"""Architecture search from a warmed-up supernet: regularized evolution and random search (docs/reference.md §4).

The supernet is loaded once; every candidate is scored in-process with inherited weights (no
process, data loader or checkpoint copy per candidate, as the reference had). The probe batches,
the one-shot fine-tuning batches and the evaluation batches are loaded once and shared, so every
candidate sees the same data. Each evaluated candidate becomes one row of ``records.csv``; rows
are appended as they are made, so a killed search resumes by replaying its seeded choices and
taking the scores it already has from the file.

One module per job, each name importable from here:

- :mod:`.scorer`: the shared batches and the scoring of one candidate (:class:`CandidateScorer`);
- :mod:`.evolution`: the search loops and the search job (:func:`run_search`, :func:`search`);
- :mod:`.records`: ``records.csv`` as it is written and resumed, and the export of the best;
- :mod:`.workers`: scoring several candidates at once;
- :mod:`.settings`: the config's ``search`` section.

A test or benchmark that replaces a name must replace it in the module that looks it up (e.g.
``sigeo.search.evolution.mutate``), not here.
"""

from .evolution import TooManyNaN, check_nan_share, mutation_count, run_search, search
from .records import EXPORT_FROM, Record, RecordLog, export_top, history_rows
from .scorer import SIZE_COLUMNS, Batches, CandidateScorer, ProbeData, scoring_batches
from .settings import SearchSettings
from .workers import Workers, scoring_workers

__all__ = [
    "EXPORT_FROM",
    "SIZE_COLUMNS",
    "Batches",
    "CandidateScorer",
    "ProbeData",
    "Record",
    "RecordLog",
    "SearchSettings",
    "TooManyNaN",
    "Workers",
    "check_nan_share",
    "export_top",
    "history_rows",
    "mutation_count",
    "run_search",
    "scoring_batches",
    "scoring_workers",
    "search",
]
