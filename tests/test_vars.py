"""Manifest variables: `${var.NAME}` with declared defaults, `${env.NAME}`, `--var`, `--var-file`;
precedence, typing, escaping, and every error with its file:line:col."""

from __future__ import annotations

import textwrap

import pytest

from reconciler import cli
from reconciler.core.errors import ManifestError
from reconciler.manifest.load import load, load_overlays, load_text, read_inputs

BASE = textwrap.dedent("""\
    variables:
      app_id:
        default: dev-app
        description: the app to manage
      cut:
        default: 0.5
      strict:
        default: false
      team: {}
    app:
      id: ${var.app_id}
      description: "${var.app_id} for ${var.team}, strict=${var.strict}, cut ${var.cut}, costs $${price}"
    concepts:
      - id: cat
    models:
      - id: gate
        type: concept-thresholder
        comparator: GREATER_THAN
        thresholds:
          cat: ${var.cut}
    """)


def problems(fn, *a, **kw) -> list[str]:
    with pytest.raises(ManifestError) as err:
        fn(*a, **kw)
    return [str(p) for p in err.value.problems]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_defaults_typed_whole_values_interpolation_and_escape():
    state = load_text(BASE, "m.yaml", inputs=read_inputs(["team=vision"]))
    assert state.app.id == "dev-app"
    assert state.app.description == "dev-app for vision, strict=false, cut 0.5, costs ${price}"
    assert state.models[0].config["thresholds"] == {"cat": 0.5}  # a number, not "0.5"


def test_var_beats_var_file_beats_default_and_later_var_files_win(tmp_path):
    f1 = write(tmp_path, "a.yaml", "app_id: from-file-a\ncut: 0.7\nteam: a\n")
    f2 = write(tmp_path, "b.yaml", "app_id: from-file-b\n")
    state = load_text(BASE, "m.yaml", inputs=read_inputs(["app_id=from-cli"], [f1, f2]))
    assert state.app.id == "from-cli"
    assert state.models[0].config["thresholds"]["cat"] == 0.7
    state = load_text(BASE, "m.yaml", inputs=read_inputs([], [f1, f2]))
    assert state.app.id == "from-file-b"


def test_var_text_is_read_as_the_defaults_type():
    state = load_text(BASE, "m.yaml", inputs=read_inputs(["cut=0.8", "strict=yes", "team=7"]))
    assert state.models[0].config["thresholds"]["cat"] == 0.8
    assert "strict=true" in state.app.description and "for 7," in state.app.description
    assert problems(load_text, BASE, "m.yaml", inputs=read_inputs(["cut=high", "team=x"])) == [
        "<command line>:1:1: --var cut: expected a number (the default is a number), not 'high'"]
    assert problems(load_text, BASE, "m.yaml", inputs=read_inputs(["strict=maybe", "team=x"])) == [
        "<command line>:1:1: --var strict: expected true or false (the default is a boolean), not 'maybe'"]


def test_env_references(monkeypatch):
    text = "app: {id: a1, description: 'by ${env.RECONCILER_TEST_WHO}'}\n"
    state = load_text(text, "m.yaml", inputs=read_inputs([], [], env={"RECONCILER_TEST_WHO": "ci"}))
    assert state.app.description == "by ci"
    monkeypatch.setenv("RECONCILER_TEST_WHO", "env")
    assert load_text(text, "m.yaml").app.description == "by env"
    monkeypatch.delenv("RECONCILER_TEST_WHO")
    assert problems(load_text, text, "m.yaml") == [
        "m.yaml:1:28: environment variable RECONCILER_TEST_WHO is not set"]


def test_unknown_and_unset_variables_are_located():
    text = BASE.replace("cat: ${var.cut}", "cat: ${var.cutt}")
    assert problems(load_text, text, "m.yaml") == [
        "m.yaml:12:16: variable 'team' has no value: give it a default, or pass --var team=VALUE or a --var-file",
        "m.yaml:20:12: unknown variable 'cutt' (did you mean 'cut'?); declare it under 'variables'"]


def test_bad_reference_and_list_in_text():
    text = "variables: {tags: {default: [a, b]}}\napp: {id: a1, description: 'x ${var.tags}', metadata: {m: '${nope}'}}\n"
    assert problems(load_text, text, "m.yaml") == [
        "m.yaml:2:28: '${var.tags}' is a list; only a string that is exactly one reference can take it",
        "m.yaml:2:59: bad reference '${nope}': use ${var.NAME} or ${env.NAME} (write $${ for a literal '${')"]
    # a whole-value reference can take a mapping
    ok = "variables: {meta: {default: {team: ml}}}\napp: {id: a1, metadata: '${var.meta}'}\n"
    assert load_text(ok, "m.yaml").app.metadata == {"team": "ml"}


def test_undeclared_var_and_var_file_names(tmp_path):
    vf = write(tmp_path, "vars.yaml", "team: x\n\nteem: y\n")
    assert problems(load_text, BASE, "m.yaml", inputs=read_inputs(["aap_id=x"], [vf])) == sorted([
        "<command line>:1:1: variable 'aap_id' is not declared in the manifest's 'variables' (did you mean 'app_id'?)",
        f"{vf}:3:1: variable 'teem' is not declared in the manifest's 'variables' (did you mean 'team'?)"])


def test_malformed_inputs(tmp_path):
    assert problems(read_inputs, ["novalue"]) == [
        "<command line>:1:1: --var 'novalue': expected NAME=VALUE with NAME made of letters, digits and '_'"]
    assert problems(read_inputs, ["ok=1", "9bad=1"])[0].startswith("<command line>:1:2: --var '9bad=1'")
    lst = write(tmp_path, "list.yaml", "- a\n- b\n")
    assert problems(read_inputs, [], [lst]) == [f"{lst}:1:1: a var file is a mapping of variable names to values"]
    missing = str(tmp_path / "nope.yaml")
    assert problems(read_inputs, [], [missing]) == [f"{missing}:1:1: cannot read var file: No such file or directory"]
    broken = write(tmp_path, "broken.yaml", "a: [\n")
    assert problems(read_inputs, [], [broken])[0].startswith(f"{broken}:")


def test_variables_section_is_schema_checked_and_not_substituted():
    text = "variables:\n  9x: {default: 1}\n  ok: {default: '${var.x}', typo: 1}\napp: {id: a1}\n"
    got = problems(load_text, text, "m.yaml")
    assert got[0] == "m.yaml:2:3: invalid variable name '9x': letters, digits and '_', not starting with a digit"
    assert got[1].startswith("m.yaml:3:29: unknown field 'typo'")


def test_schema_errors_on_substituted_values_point_at_the_reference():
    state_text = BASE
    got = problems(load_text, state_text, "m.yaml", inputs=read_inputs(["cut=2", "team=x"]))
    assert got == ["m.yaml:20:12: threshold 2.0 for concept 'cat' is outside [0, 1]"]
    got = problems(load_text, state_text, "m.yaml", inputs=read_inputs(["app_id=bad id", "team=x"]))
    assert got[0].startswith("m.yaml:11:7: invalid id 'bad id'")


def test_load_and_overlays_take_inputs(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    assert load(path, inputs=read_inputs(["team=t"])).app.id == "dev-app"
    assert load_overlays([path], inputs=read_inputs(["team=t", "app_id=p"])).app.id == "p"


def test_cli_validate_and_plan_take_vars(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    monkeypatch.delenv("CLARIFAI_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "m.yaml", BASE)
    assert cli.main(["validate", path, "--require-values"]) == 1
    assert "variable 'team' has no value" in capsys.readouterr().err
    vf = write(tmp_path, "v.yaml", "team: ml\n")
    assert cli.main(["validate", path, "--var-file", vf]) == 0
    assert cli.main(["plan", path, "--var", "team=ml", "--var", "app_id=cli-app", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"id": "cli-app"' in out


NO_VALUES = textwrap.dedent("""\
    variables:
      app_id: {description: the app}
      cut: {}
      model: {}
      label: {}
    app:
      id: ${var.app_id}
      description: "for ${var.label}"
    concepts:
      - id: cat
    models:
      - id: gate
        type: concept-thresholder
        comparator: GREATER_THAN
        thresholds:
          cat: ${var.cut}
    workflows:
      - id: wf
        nodes:
          - id: n
            model: ${var.model}
    """)


def test_validate_checks_a_manifest_whose_variables_have_no_value(tmp_path, capsys):
    """A pre-commit hook has no values: validate checks structure and the other references with
    placeholders (a number where the schema wants one) and says which variables it stood in for."""
    path = write(tmp_path, "m.yaml", NO_VALUES)
    assert cli.main(["validate", path]) == 0
    captured = capsys.readouterr()
    assert "1 manifest(s) valid" in captured.out
    assert "checked with placeholders: app_id, cut, label, model" in captured.err
    assert cli.main(["validate", path, "--require-values"]) == 1
    assert "variable 'cut' has no value" in capsys.readouterr().err


def test_placeholders_still_find_every_other_problem(tmp_path, capsys):
    broken = NO_VALUES.replace("cat: ${var.cut}", "dog: ${var.cut}").replace("comparator: GREATER_THAN", "comparator: BIGGER")
    path = write(tmp_path, "m.yaml", broken)
    assert cli.main(["validate", path]) == 1
    err = capsys.readouterr().err
    assert "BIGGER" in err and "dog" in err
    assert "placeholder-" not in err  # no problem about a placeholder itself
