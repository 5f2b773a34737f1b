"""Progress display: a rich bar on a terminal, one line per epoch otherwise, nothing when quiet."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class EpochProgress:
    """Context manager reporting each finished epoch's train loss and validation metric."""

    def __init__(self, epochs: int, monitor: str, *, enabled: bool, live: bool) -> None:
        self.epochs, self.monitor, self.enabled, self.live = epochs, monitor, enabled, live
        self.console = Console(stderr=True)
        self.bar: Progress | None = None

    def __enter__(self) -> EpochProgress:
        if self.enabled and self.live:
            self.bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(),
                                console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=self.epochs)
        return self

    def advance_to(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch)

    def epoch_done(self, epoch: int, train_loss: float, value: float) -> None:
        text = f"train loss {train_loss:.4f}  val {self.monitor} {value:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, description=text)
        elif self.enabled:
            self.console.print(f"epoch {epoch}/{self.epochs}  {text}", highlight=False)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
