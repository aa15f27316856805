"""The line ``dgsamp train`` prints first names a DA task's --source domains, not every non-target."""

from __future__ import annotations

from dgsamp.config import parse_run_config
from dgsamp.training.describe import describe_domains


def test_describe_names_only_the_given_sources():
    # PACS domains in order: art_painting, cartoon, photo, sketch
    given = parse_run_config(["--dataset", "PACSMini", "--protocol", "tllib", "--algorithm", "DANN",
                              "--source", "photo", "--target", "sketch", "--device", "cpu"])
    assert describe_domains(given) == "source photo -> target sketch (DA)"
    every_other = parse_run_config(["--dataset", "PACSMini", "--protocol", "tllib", "--algorithm", "DANN",
                                    "--target", "S", "--device", "cpu"])
    assert describe_domains(every_other) == "source art_painting, cartoon, photo -> target sketch (DA)"
