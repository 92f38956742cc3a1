"""Command groups shared by the sub-command modules."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trialbot")
def main() -> None:
    """Multilingual SMS and WhatsApp conversations for clinical-trial participants."""
    from ..config import load_env

    # Every command sees `.env`, also those that read no `Settings` (TRANSLATIONS_DIR).
    load_env()


@main.group()
def flows() -> None:
    """Check and test the study's flow files."""


@main.group()
def translations() -> None:
    """Extract, update, compile and check the gettext catalogs."""
