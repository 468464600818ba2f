"""Measuring generated pieces: the library behind ``g2m-evaluate`` and the default model's measures.

- `folders`: evaluate every MIDI file under a folder of generated (and one of reference) pieces
  with the paper's metrics (SPEC §7): `evaluate_folders`, `mean_metrics`;
- `classifier`: the composer classifier (SPEC §6) and its recognition of the prompted composers;
- `report`: ``report.json`` / ``report.md`` / plots of an evaluation (`write_report`);
- `sanity`: listening-free measures (empty bars, repeated notes, MIDI round trip);
- `convergence`: how much a training run's validation loss still moved at its end;
- `recognition`: recognition rates of the prompted composers with 95 % intervals (`Recognition`);
- `feature_classifier`: a second, independent composer classifier on score features;
- `memorisation`: the share of generated spans found in the training pieces (`SpanIndex`);
- `style`: does the composer token steer? `measure_style` generates under each prompt and asks the judges.

The paper's own figures are in `g2m_hf.paper`.
"""

from .classifier import (
    CLASSIFIER_MAX_EVENTS,
    FEATURE_CLASSIFIER_FILE,
    ComposerClassifier,
    classifier_input_events,
    default_classifier_path,
    recognition,
)
from .convergence import convergence
from .feature_classifier import FeatureComposerClassifier
from .folders import DEFAULT_SI_MAX_SECONDS, SETS, evaluate_folders, find_midi_files, mean_metrics, prompted_composer
from .memorisation import SpanIndex
from .recognition import Recognition, wilson_interval
from .report import REPORT_FILES, check_output_dir, render_markdown, write_report
from .sanity import folder_sanity, round_trips, sanity_measures, summarise_sanity
from .style import EXCERPT_BARS, excerpts, feature_judge, judge_excerpts, judge_pieces, measure_style, network_judge

__all__ = [
    "CLASSIFIER_MAX_EVENTS",
    "FEATURE_CLASSIFIER_FILE",
    "DEFAULT_SI_MAX_SECONDS",
    "EXCERPT_BARS",
    "REPORT_FILES",
    "SETS",
    "ComposerClassifier",
    "FeatureComposerClassifier",
    "Recognition",
    "SpanIndex",
    "check_output_dir",
    "classifier_input_events",
    "convergence",
    "default_classifier_path",
    "evaluate_folders",
    "excerpts",
    "feature_judge",
    "find_midi_files",
    "folder_sanity",
    "judge_excerpts",
    "judge_pieces",
    "mean_metrics",
    "measure_style",
    "network_judge",
    "prompted_composer",
    "recognition",
    "render_markdown",
    "round_trips",
    "sanity_measures",
    "summarise_sanity",
    "wilson_interval",
    "write_report",
]
