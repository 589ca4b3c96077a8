"""Executors for models and their versions: create (PostModels, then PostModelVersions), update,
new version, delete; the training wait."""

from __future__ import annotations

from typing import Any

from reconciler.api.codecs import ModelCodec
from reconciler.api.live import list_versions
from reconciler.api.training import NEEDS_LABELS, TRAINING_FAILED, is_trained, status_name, training_code
from reconciler.apply.base import (
    TRAIN_REPORT_EVERY_S,
    ExecutorBase,
    TrainingNotReady,
    _desired,
    _few,
    _is_duplicate,
    _is_not_found,
    _live,
    _trainable,
    executes,
)
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError, ApplyError
from reconciler.core.state import (
    Kind,
    Model,
    read_marker,
)
from reconciler.core.status_codes import BY_NAME
from reconciler.planning.actions import Action, Op

INTERNAL_UNCATEGORIZED = BY_NAME["INTERNAL_UNCATEGORIZED"]


def stale_metadata(live: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """The PatchModels "remove" document that deletes from `live` what a "merge" of `written`
    would leave behind, within the keys the manifest owns: the ones the live ownership marker says
    it managed, the ones written now (the marker among them). Empty: a merge alone is enough.

    The API's merge deep-merges (Clarifai/docs `docs/api-guide/advanced-topics/patching.md`,
    "Overwrite a sub element": `{"key1": {"key2": true}}` merged into `{"key1": {"key2": ...,
    "key3": ...}}` keeps key3), appends to lists ("For non-id lists, merge will append") and
    ignores null ("Merge a null element does nothing"); its remove deletes a key given as `true`,
    at any depth ("Remove a sub element"). So: a key the manifest dropped goes whole; inside a
    nested object, the sub-keys it dropped go; a list, a null or a change of type goes whole
    before the merge writes the new value. A scalar over a scalar needs nothing (merge
    overwrites)."""
    owned = set(read_marker(live)[2]) | set(written)
    out: dict[str, Any] = {}
    for key, old in live.items():
        if key not in owned:
            continue  # the user's own key
        if key not in written:
            out[key] = True
            continue
        gone = _stale(old, written[key])
        if gone is not None:
            out[key] = gone
    return out


def _stale(old: Any, new: Any) -> Any:
    """What to remove from `old` before merging `new` over it: None (nothing), True (all of it) or
    a nested remove document."""
    if isinstance(old, dict) and isinstance(new, dict):
        if not new:
            return None  # "Merge {} element will replace"
        out = {k: True if k not in new else _stale(v, new[k]) for k, v in old.items()}
        out = {k: v for k, v in out.items() if v is not None}
        return out or None
    if old == new and type(old) is type(new):
        return None
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)) or new is None:
        return True
    return None


#: How many 99009 answers in a row a version read takes before giving up (clarifai-python-grpc's 3).
INTERNAL_RETRIES = 3


class ModelExecutors(ExecutorBase):
    # --- models ----------------------------------------------------------------------------
    @executes((Op.CREATE, Kind.MODEL))
    def _create_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._create_one_model(_desired(a, Model))

    def _create_one_model(self, m: Model, *, again: bool = False) -> None:
        """PostModels with the bare model, then PostModelVersions with its configuration, for
        every type: PostModels creates a model and never a version (Clarifai/docs
        `docs/product-updates/upcoming-api-changes/model-version-endpoints.md`: "PostModels will
        create new models but not create new model versions"; clarifai-python
        `clarifai/client/app.py` strips `output_info` before PostModels, then calls
        PostModelVersions and pins the version that answer names). The version the workflows pin
        is the one PostModelVersions returns (`result.new_versions`)."""
        fresh = True
        try:
            self._write("post", self._at("models"), {"models": [ModelCodec.to_api(m)]}, retry=False)
        except ApiError as err:
            if not (_is_duplicate(err) or err.http_status == 0 or err.http_status >= 500):
                raise
            if not _is_duplicate(err) and not again and not self._model_exists(m.id):
                # the answer was lost and nothing was made (a 5xx or a dropped connection before
                # the commit): send it again, once -- it provably never ran
                self._create_one_model(m, again=True)
                return
            fresh = False  # created by a run whose answer was lost, or by someone else: adopt it
        # Its concepts exist before a version names them (the model itself names none: `_tasks`).
        self._await_gate(m.id)
        # A fresh model has no version to reuse, so post at once (`_settle_version` resolves a
        # race with another apply); an adopted one may have it already.
        version = self._ensure_version(m, look_first=not fresh)
        if not fresh:
            self._patch_model_fields(m)
        self.result.new_versions[m.id] = version.get("id", "")
        self._await_trained(m, version)

    def _model_exists(self, model_id: str) -> bool:
        """Whether the app has this model now (GetModel; not found is False)."""
        try:
            self.client.get(self._at("models", model_id))
        except ApiError as err:
            if _is_not_found(err):
                return False
            raise
        return True

    def _await_gate(self, model_id: str) -> None:
        """Wait until the concept batches this model's version names have been created
        (see `_tasks`); give up if the apply is stopping (one of them failed, or Ctrl-C)."""
        for event in self._gates.get(model_id, ()):
            while not event.wait(0.05):
                if self._stopping.is_set():
                    raise ApplyError(
                        f"model {model_id}: not trained: apply stopped before the concepts it trains on were created"
                    )

    @executes((Op.UPDATE, Kind.MODEL), (Op.ADOPT, Kind.MODEL))
    def _update_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._patch_model_fields(_desired(a, Model), _live(a, Model))

    def _patch_model_fields(self, m: Model, live: Model | None = None) -> None:
        """PatchModels "merge" with the manifest's fields and metadata (marker included), after a
        PatchModels "remove" of whatever a merge would leave behind in the metadata the manifest
        owns (`stale_metadata`), so the live managed metadata ends equal to the manifest's, nested
        keys included. PatchModelsRequest has no `metadata_action` (clarifai-grpc), and an
        "overwrite" may replace the whole model (quirk patch-overwrite-replaces), fields this tool
        does not know included; "remove" and "merge" touch only what is sent. The user's own keys
        (never managed, not written now) are never sent."""
        sent = {k: v for k, v in ModelCodec.to_api(m).items() if k != "model_type_id"}
        raw = live.raw if live is not None and live.raw else None
        if raw is None:  # adopted after a lost answer, or a saved plan: read what is there
            try:
                raw = self.client.get(self._at("models", m.id)).get("model") or {}
            except ApiError as err:
                if not _is_not_found(err):
                    raise
                raw = {}
        live_meta = raw.get("metadata")
        stale = stale_metadata(live_meta if isinstance(live_meta, dict) else {}, sent["metadata"])
        if stale:
            self._write("patch", self._at("models"), {"models": [{"id": m.id, "metadata": stale}], "action": "remove"})
        self._write("patch", self._at("models"), {"models": [sent], "action": "merge"})

    @executes((Op.NEW_VERSION, Kind.MODEL))
    def _new_version_model(self, actions: list[Action]) -> None:
        for a in actions:
            self._new_version_one_model(_desired(a, Model))

    def _new_version_one_model(self, m: Model) -> None:
        # The plan saw no version with this config, so post at once; `_settle_version` then
        # resolves a race with another apply that posted the same config meanwhile.
        version = self._ensure_version(m, look_first=False)
        self.result.new_versions[m.id] = version.get("id", "")
        self._await_trained(m, version)

    def _ensure_version(self, m: Model, *, look_first: bool = True) -> dict[str, Any]:
        """Reuse the newest version whose config equals the desired one, else post a new one.
        The post is sent without retries; on a lost answer we look again before giving up."""
        want = self._resolve_config(m)
        if look_first:
            found = self._find_version(m, want)
            if found is not None:
                return found
        body = {"model_versions": [ModelCodec.version_to_api(m.type, want)]}
        try:
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        except ApiError as err:
            if err.http_status and err.http_status < 500 and err.http_status != 429:
                raise
            found = self._find_version(m, want)  # did the lost request commit?
            if found is not None:
                return found
            resp = self._write("post", self._at("models", m.id, "versions"), body, retry=False)
        posted = (resp.get("model") or {}).get("model_version") or {}
        return self._settle_version(m, want, posted)

    def _settle_version(self, m: Model, want: dict[str, Any], posted: dict[str, Any]) -> dict[str, Any]:
        """Two applies running at once can both post the same config (each checked first and saw
        none). Rule: the OLDEST version with the desired config wins; a poster that finds an
        older twin of its fresh version deletes its own (nothing points at it yet) and uses the
        twin. Each racer checks after its own post committed, so exactly one twin survives."""
        pid = posted.get("id", "")
        versions = list_versions(self.client, self.base, m.id, m.type)  # newest first, configs complete
        twins = [v for v in versions if self._same_config(m, v, want) and self._usable(m, v)]
        if not pid or not twins or twins[-1].get("id") == pid:
            return posted
        if any(v.get("id") == pid for v in twins):
            try:
                self._write("delete", self._at("models", m.id, "versions", pid), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise
            self.progress(f"  model/{m.id}: another apply made the same version first; using {twins[-1].get('id')}")
        return twins[-1]

    def _find_version(self, m: Model, want: dict[str, Any]) -> dict[str, Any] | None:
        try:
            versions = list_versions(self.client, self.base, m.id, m.type)  # newest first, configs complete
        except ApiError as err:
            if _is_not_found(err):
                return None
            raise
        for v in versions:  # newest first
            if self._same_config(m, v, want) and self._usable(m, v):
                return v
        return None

    @staticmethod
    def _same_config(m: Model, v: dict[str, Any], want: dict[str, Any]) -> bool:
        """Whether the version `v` (as the API answered it) has the config `want`, what the server
        filled in on its own aside (`modeltypes.config_matches`)."""
        return modeltypes.config_matches(m.type, modeltypes.from_api(m.type, v), want)

    @staticmethod
    def _usable(m: Model, v: dict[str, Any]) -> bool:
        """A trainable model's version that never trained or failed is no version to reuse (a
        workflow cannot use it); one trained or still training is. Operator versions always are."""
        if not _trainable(m):
            return True
        return training_code((v.get("status") or {}).get("code")) not in TRAINING_FAILED

    def _await_trained(self, m: Model, version: dict[str, Any]) -> None:
        """Wait until the version is trained (`training.TRAINED`). Prints at most one line per
        TRAIN_REPORT_EVERY_S (elapsed time and status name). A version that will never train
        raises TrainingNotReady at once; one still training after `train_timeout_s` stops apply."""
        if not _trainable(m):
            return
        vid = version.get("id", "")
        start = self.clock()
        last_report: float | None = None
        status = version.get("status") or {}
        while True:
            code = training_code(status.get("code"))
            if is_trained(code):
                return
            if self._stopping.is_set():  # a failure elsewhere, or Ctrl-C: stop waiting at once
                raise ApplyError(
                    f"model {m.id}: version {vid} not trained yet ({status_name(code)}); apply stopped "
                    "while waiting for it, and the next apply waits for it again"
                )
            elapsed = self.clock() - start
            if code in TRAINING_FAILED:
                raise TrainingNotReady(m.id, self._not_ready_line(m, vid, code, str(status.get("description") or "")))
            if elapsed >= self.train_timeout_s:
                raise ApplyError(
                    f"model {m.id}: version {vid} not trained after {elapsed:.0f}s "
                    f"({status_name(code)}); workflows were not pointed at it. Training "
                    f"may still finish: run apply again later, or give it longer with "
                    f"--train-timeout SECONDS"
                )
            if last_report is None or elapsed - last_report >= TRAIN_REPORT_EVERY_S:
                last_report = elapsed
                self.progress(
                    f"  model/{m.id}: training version {vid}: {status_name(code)} "
                    f"({elapsed:.0f}s elapsed, timeout {self.train_timeout_s:.0f}s)"
                )
                self.emit(
                    "training_wait",
                    model=m.id,
                    version=vid,
                    status=status_name(code),
                    elapsed_s=round(elapsed, 1),
                    timeout_s=self.train_timeout_s,
                )
            self._pause(min(self.poll_s, max(0.0, self.train_timeout_s - elapsed)))
            status = self._read_version(m.id, vid).get("status") or {}

    def _read_version(self, model_id: str, vid: str) -> dict[str, Any]:
        """GetModelVersion, asked again (at most `INTERNAL_RETRIES` times, `poll_s` apart) when it
        is answered INTERNAL_UNCATEGORIZED (99009): clarifai-python-grpc `tests/common.py`
        `wait_for_model_trained(..., retry_on_internal_failure=True)` does exactly that while it
        waits for training on the real API ("Temp fix for EAGLE-4649", at most 3 retries). The
        client already retries 5xx answers; this covers 99009 in any HTTP answer. Any other
        failure, or one 99009 too many, is raised."""
        path = self._at("models", model_id, "versions", vid)
        for attempt in range(INTERNAL_RETRIES + 1):
            try:
                return self.client.get(path).get("model_version") or {}
            except ApiError as err:
                if err.code != INTERNAL_UNCATEGORIZED or attempt == INTERNAL_RETRIES:
                    raise
                self.progress(f"  model/{model_id}: version {vid}: the API answered INTERNAL_UNCATEGORIZED; asking again")
                self._pause(self.poll_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _not_ready_line(self, m: Model, vid: str, code: int, description: str) -> str:
        what = status_name(code) + (f' "{description}"' if description else "")
        concepts = modeltypes.training_concepts(m.type, self._resolve_config(m))
        if code in NEEDS_LABELS:
            need = (
                f"it trains on inputs labelled with its concepts ({_few(concepts)}): add inputs with "
                f"those concepts or SUCCESS annotations, at least one per concept"
                if concepts
                else "it trains on labelled inputs, and it names no concepts"
            )
            return f"model {m.id} cannot train yet ({what}): {need}."
        return f"model {m.id}: version {vid} failed to train ({what})."

    @executes((Op.DELETE, Kind.MODEL))
    def _delete_model(self, actions: list[Action]) -> None:
        for a in actions:
            try:
                self._write("delete", self._at("models", a.id), None)
            except ApiError as err:
                if not _is_not_found(err):
                    raise
