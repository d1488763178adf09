"""Commands about issues: ``render`` an issue to files and ``lint`` it before sending."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli.core import Context, console, pass_context
from newsletter.errors import InputError


def register(group: click.Group) -> None:
    """Attach ``render`` and ``lint`` to the command group."""
    group.add_command(render_command)
    group.add_command(lint_command)


@click.command("render")
@click.argument("issues", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for <slug>.html and <slug>.txt.",
)
@pass_context
def render_command(ctx: Context, issues: tuple[Path, ...], out_dir: Path) -> None:
    """Render ISSUE.md to HTML and text, filled in for a sample recipient, and print the paths."""
    from newsletter.compose.issue import compile_file  # the pipeline's imports cost ~250 ms
    from newsletter.compose.render import sample_values

    settings = ctx.settings
    for path in issues:
        compiled = compile_file(path, settings)
        html, text = compiled.personalise(sample_values(settings.base_url, compiled.lang))
        html_path = out_dir / f"{compiled.slug}.html"
        text_path = out_dir / f"{compiled.slug}.txt"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            html_path.write_text(html, encoding="utf-8")
            text_path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot write the rendered files: {exc.strerror}", path=out_dir
            ) from None
        console.print(str(html_path), soft_wrap=True)
        console.print(str(text_path), soft_wrap=True)


@click.command("lint")
@click.argument("issues", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@pass_context
def lint_command(ctx: Context, issues: tuple[Path, ...], as_json: bool) -> int:
    """Check ISSUE.md before sending; exit 1 when there is an error.

    Prints one line per finding: `error|warning <file>:<line>: <message>`.
    """
    from newsletter.compose.lint import lint_file

    findings = [finding for path in issues for finding in lint_file(path, ctx.settings)]
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
    return 1 if any(f.severity == "error" for f in findings) else 0
