"""``ModelCheckpoint`` whose saved state names its files relative to its directory.

Lightning's ``ModelCheckpoint`` resolves ``dirpath`` to an absolute real path and keeps it,
with the best, last and k-th best checkpoints' absolute paths, in every checkpoint it writes.
A checkpoint then names the machine's layout, and the same training in two checkouts gives
different bytes (``dvc repro`` of a fresh clone could not reproduce the locked hash).
:class:`RelativeModelCheckpoint` saves those paths relative to ``dirpath`` and anchors them
to its own ``dirpath`` again when a resumed run loads them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

#: What ``dirpath`` is saved as: the paths beside it are relative to the loading run's own.
_HERE = "."
_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RelativeModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``; its saved state holds no absolute path.

    Takes every argument of ``lightning.pytorch.callbacks.ModelCheckpoint`` (``--checkpoint.*``).
    """

    @property
    def state_key(self) -> str:
        """``ModelCheckpoint``'s own key, so that checkpoints of either class resume alike."""
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def outputs(self, root: str | Path | None) -> list[Path]:
        """The checkpoints an earlier fit kept in ``dirpath``, except ``last*.ckpt`` (the
        recovery state that a fit resumed with ``--ckpt_path last`` continues)."""
        folder = Path(self.dirpath or Path(root or ".") / "checkpoints")
        return sorted(
            path
            for path in folder.glob(f"*{self.FILE_EXTENSION}")
            if not path.name.startswith(self.CHECKPOINT_NAME_LAST)
        )

    def _relative(self, path: str) -> str:
        if not path or self.dirpath is None or not os.path.isabs(path):
            return path
        return os.path.relpath(path, self.dirpath)

    def _absolute(self, path: str) -> str:
        if not path or self.dirpath is None or os.path.isabs(path):
            return path
        return os.path.join(self.dirpath, path)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.dirpath is None:
            return state
        state["dirpath"] = _HERE
        for key in _PATH_KEYS:
            state[key] = self._relative(state[key])
        state["best_k_models"] = {self._relative(k): v for k, v in state["best_k_models"].items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        if state.get("dirpath") == _HERE:
            state["dirpath"] = self.dirpath
            for key in _PATH_KEYS:
                if key in state:
                    state[key] = self._absolute(state[key])
            models = state.get("best_k_models", {})
            state["best_k_models"] = {self._absolute(k): v for k, v in models.items()}
        super().load_state_dict(state)
