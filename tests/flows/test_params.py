"""The flows' command lines are made from the flows (moola_flows.params): every parameter of the flow
is a flag with the flow's own default, choices and help, and nothing else is."""

from __future__ import annotations

import inspect

import pytest

from moola.gates.config import DEFAULT_SEED


@pytest.mark.parametrize("module,name", [("moola_flows.gates", "gates"), ("moola_flows.revalidate", "revalidate")])
def test_every_flow_parameter_is_a_flag_with_the_flows_default(module, name):
    import importlib
    mod = importlib.import_module(module)
    flow, parser = getattr(mod, name), mod.build_parser()
    params = inspect.signature(flow.fn).parameters
    dests = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(dests) == set(params)
    for p in params.values():
        assert dests[p.name].option_strings[0] == "--" + p.name.replace("_", "-")
        assert dests[p.name].required == (p.default is inspect.Parameter.empty)
        if p.default is not inspect.Parameter.empty:
            assert dests[p.name].default == p.default, p.name
        assert dests[p.name].help, p.name  # the docstring's Args line


def test_the_gates_command_line_parses_to_the_flows_keyword_arguments():
    from moola_flows.gates import build_parser
    args = vars(build_parser().parse_args(["--data", "d.parquet", "--val-size", "20", "--runner", "local",
                                           "--require-approval", "--policy", '{"f1_margin": 0.02}']))
    assert args["data"] == "d.parquet" and args["val_size"] == 20.0 and args["runner"] == "local"
    assert args["require_approval"] is True and args["policy"] == {"f1_margin": 0.02}
    assert args["seed"] == DEFAULT_SEED and args["unlabeled"] is None and args["preset"] == "default"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data", "d.parquet", "--runner", "runpd"])  # the flow's Literal choices
    with pytest.raises(SystemExit):
        build_parser().parse_args([])  # --data is required, as the flow's `data` has no default


def test_a_boolean_that_defaults_to_true_can_be_turned_off():
    from moola_flows.revalidate import build_parser
    assert build_parser().parse_args(["--data", "d"]).start_gates_run is True
    assert build_parser().parse_args(["--data", "d", "--no-start-gates-run"]).start_gates_run is False
