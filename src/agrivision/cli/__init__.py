"""The ``agrivision`` command line: a thin layer that parses, calls the API and reports.

Exit codes: 0 success, 2 user error (one line on stderr naming the file and the fix),
1 a bug (with traceback).
"""

from __future__ import annotations

import sys

import click
from rasterio.errors import RasterioIOError

from agrivision._version import __version__
from agrivision.cli.calibrate import calibrate
from agrivision.cli.fields import classify, stats, vectorize
from agrivision.cli.indices import indices
from agrivision.cli.info import info, sensors
from agrivision.cli.report import demo, report
from agrivision.cli.screen import screen
from agrivision.cli.search import search
from agrivision.cli.segment import chips, evaluate, segment, train
from agrivision.cli.warn import one_line_warnings
from agrivision.cli.zones import prescription_command, zones
from agrivision.errors import AgrivisionError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="agrivision")
def cli() -> None:
    """Satellite and drone imagery to field-level crop-health answers."""


for command in (
    info,
    sensors,
    indices,
    stats,
    classify,
    vectorize,
    zones,
    prescription_command,
    search,
    report,
    demo,
    screen,
    calibrate,
    chips,
    train,
    evaluate,
    segment,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2, never a traceback.

    Warnings print as ``agrivision: warning: <message>``, each message once per run.
    """
    with one_line_warnings():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="agrivision", standalone_mode=False)
    except AgrivisionError as exc:
        click.echo(f"agrivision: error: {exc}", err=True)
        return 2
    except RasterioIOError as exc:  # a block that fails to decode deep inside a computation
        cause = exc.__cause__ or exc.__context__  # rasterio keeps GDAL's message (and file) there
        detail = " ".join(str(cause or exc).split())
        click.echo(
            f"agrivision: error: cannot read raster data ({detail}) — the file is damaged or "
            "incomplete: re-download or re-export it",
            err=True,
        )
        return 2
    except click.exceptions.Abort:
        click.echo("agrivision: aborted", err=True)
        return 130
    except click.ClickException as exc:  # usage errors: unknown option, missing argument
        click.echo(f"agrivision: error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
