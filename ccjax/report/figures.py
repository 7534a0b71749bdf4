"""The one way a figure is made and written: `new_figure` (or `pyplot`), then `save_figure`.

`save_figure` writes the PNG through ccjax/run/rundir.py's write_atomic, so a figure is never
half-written and takes the file mode that every other file of a run takes.
"""

from __future__ import annotations

import io

from ccjax.run.rundir import write_atomic


def new_figure(width: float, height: float):
    """A matplotlib Figure not registered with pyplot (nothing global to close), drawn with Agg."""
    from matplotlib.figure import Figure  # matplotlib loads only for a command that draws

    return Figure(figsize=(width, height))


def pyplot():
    """matplotlib.pyplot on the Agg backend, for the figures drawn with plt.subplots."""
    import matplotlib  # loads only for a command that draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 110, **savefig_kwargs) -> None:
    """Writes `fig` as a PNG to `path`, atomically (the whole image or the old file, never a part)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **savefig_kwargs)
    write_atomic(path, lambda f: f.write(buf.getvalue()))


def figure_texts(fig) -> list[str]:
    """Every text a figure shows: titles, axis labels, tick labels, legend entries, colour-bar labels and
    free text (what the tests read, so no title or note can silently disappear)."""
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and callable(a.get_text))]
    return [t for t in texts if t]
