"""Mutation check: do the tests catch a one-line change in the equation modules?

    python tools/mutation_check.py                      # every mutant of every target (slow: see docs/testing.md)
    python tools/mutation_check.py --target gecc --max 40   # one target, at most 40 mutants (spread evenly)
    python tools/mutation_check.py --list               # only list the mutants
    python tools/mutation_check.py --operators wiring   # only the wiring mistakes (WIRING)

For each target module it generates single-line mutants with a fixed set of operators (arithmetic
and comparison flips, axis swaps, min/max and sum/mean swaps, dropped transposes, constant changes
and swaps of the view variables) and with wiring mistakes (a keyword or trailing argument left out so
a default applies, the last checkpoint's variables for the best one's, plain for balanced accuracy, a
threshold's factor dropped, a seed added to the index instead of hashed), applies one at a time, runs
that module's tests in a fresh process (stopping at the first failure), restores the file, and
reports the kill rate and every
surviving mutant (file:line, before -> after). A survivor is either a missing assertion or an
equivalent mutant (one that cannot change behaviour): read each one. It works on a copy of the
checkout in a temporary folder, so the working tree is never touched. Not run in CI: it takes
long (docs/testing.md has the last figures).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# target -> (module files, the fast tests that must catch their mutants). A test may be a node id
# (file::test) so that slow files contribute only the tests that reach the module.
TARGETS = {
    "contrastive": (["ccjax/methods/contrastive.py", "ccjax/methods/cc.py"],
                    ["tests/test_losses.py", "tests/test_gecc_losses.py", "tests/test_gradients.py"]),
    "gecc": (["ccjax/methods/gecc/losses.py", "ccjax/methods/gecc/objective.py"],
             ["tests/test_gecc_losses.py", "tests/test_gecc_oracle.py", "tests/test_gecc_train.py",
              "tests/test_gradients.py"]),
    "cdsm": (["ccjax/methods/gecc/domain_shift.py"],
             ["tests/test_domain_shift.py", "tests/test_gecc_oracle.py", "tests/test_gradients.py"]),
    "favb": (["ccjax/models/vit.py"], ["tests/test_vit_oracle.py", "tests/test_vit.py", "tests/test_gradients.py"]),
    "data": (["ccjax/data/reading.py", "ccjax/data/pipeline.py"],
             ["tests/test_pipeline.py", "tests/test_step_inputs.py", "tests/test_assign.py"]),
    "step": (["ccjax/train/step.py"],
             ["tests/test_step_inputs.py", "tests/test_train.py::test_train_step_on_4_devices_equals_1_device",
              "tests/test_train.py::test_bfloat16_step_keeps_float32_params_and_finite_loss"]),
    "augment": (["ccjax/augment/ops.py", "ccjax/augment/pipeline.py"],
                ["tests/test_config_wires.py", "tests/test_augment.py"]),
    "eval": (["ccjax/eval/metrics.py", "ccjax/eval/assign.py"], ["tests/test_assign.py", "tests/test_metrics.py"]),
    "own_images": (["ccjax/eval/suggest_k.py", "ccjax/explain/predictability.py"],
                   ["tests/test_suggest_k.py", "tests/test_nuisance_probe.py",
                    "tests/test_loose_wires.py::test_unbalanced_clusters_with_uninformative_cues_score_near_zero_and_do_not_warn",
                    "tests/test_own_images.py::test_suggest_k_finds_the_number_of_groups_in_the_features",
                    "tests/test_own_images.py::test_suggest_k_range_errors_are_one_line"]),
    "masking": (["ccjax/data/masking.py"],
                ["tests/test_masking.py",
                 "tests/test_loose_wires.py::test_masks_under_different_seeds_are_independent_draws_not_shifted_copies"]),
    "opening": (["ccjax/data/opening.py"],
                ["tests/test_streaming.py::test_auto_streams_only_what_does_not_fit_the_memory_share",
                 "tests/test_streaming.py::test_every_dataset_says_at_construction_whether_it_streams_and_how_it_was_opened",
                 "tests/test_loose_wires.py::test_memory_share_decides_at_share_times_the_hosts_ram"]),
    # the training loop and the final evaluation: slow tests (each trains a tiny digits run)
    "run": (["ccjax/train/loop.py", "ccjax/eval/evaluation.py", "ccjax/report/run_report.py"],
            ["tests/test_optimizer.py",
             "tests/test_faults.py::test_a_failed_best_checkpoint_save_names_the_training_checkpoint_kept",
             "tests/test_faults.py::test_kill_between_the_best_and_the_main_save_resumes_exactly",
             "tests/test_report.py::test_metrics_last_and_best_by_training_loss", "tests/test_run_wires.py",
             "tests/test_mfavbs_train.py::test_train_step_reads_cached_anchors_and_never_runs_clip"]),
}

# (name, pattern, replacement): applied to the first match on a code line.
OPERATORS = [
    ("+ -> -", r" \+ ", " - "), ("- -> +", r" - ", " + "), ("* -> /", r" \* ", " / "), ("/ -> *", r" / ", " * "),
    ("== -> !=", r"==", "!="), ("!= -> ==", r"!=", "=="), ("< -> <=", r"(?<![<=])<(?![<=])", "<="),
    ("> -> >=", r"(?<![>=-])>(?![>=])", ">="), ("<= -> <", r"<=", "<"), (">= -> >", r">=", ">"),
    ("axis 0 -> 1", r"axis=0\b", "axis=1"), ("axis 1 -> 0", r"axis=1\b", "axis=0"),
    ("axis -1 -> 0", r"axis=-1\b", "axis=0"), ("max -> min", r"\bjnp\.max\(", "jnp.min("),
    ("min -> max", r"\bjnp\.minimum\(", "jnp.maximum("), ("maximum -> minimum", r"\bjnp\.maximum\(", "jnp.minimum("),
    ("sum -> mean", r"\.sum\(", ".mean("), ("mean -> sum", r"\bjnp\.mean\(", "jnp.sum("),
    ("drop .T", r"\.T\b", ""), ("1.0 -> 2.0", r"\b1\.0\b", "2.0"), ("0.5 -> 1.0", r"\b0\.5\b", "1.0"),
    ("True -> False", r"\bTrue\b", "False"), ("False -> True", r"\bFalse\b", "True"),
    ("+ 1 -> + 2", r"\+ 1\b", "+ 2"), ("- 1 -> - 2", r"- 1\b", "- 2"), ("2 * -> 1 *", r"\b2 \* ", "1 * "),
    ("o1 -> o2", r"\bo1\[", "o2["), ("o2 -> od", r"\bo2\[", "od["), ("od -> o2", r"\bod\[", "o2["),
    ("z2 -> zd", r"\bz2\b", "zd"), ("zd -> z2", r"\bzd\b", "z2"), ("c2 -> cd", r"\bc2\b", "cd"),
    ("cd -> c2", r"\bcd\b", "c2"), ("c1 -> c2", r"\bc1\b", "c2"), ("x1 -> x2", r"\bx1\b", "x2"),
    ("s_ab.T -> s_ab", r"s_ab\.T", "s_ab"), ("loss_a -> loss_b", r"\bloss_a\b", "loss_b"),
    ("diag -> 0", r"jnp\.diagonal\(w\)", "w[0]"), ("a -> b (pair)", r"\(cols\[0\], cols\[2\]", "(cols[0], cols[1]"),
    ("stop_gradient off", r"jax\.lax\.stop_gradient\(", "("),
    ("// -> %", r" // ", " % "), ("argmax -> argmin", r"\.argmax\(", ".argmin("),
    ("same key", r"jax\.random\.fold_in\((\w+), [^)]*\)", r"\1"), ("[::-1] off", r"\[::-1\]", ""),
]

# Wiring mistakes: a right value that reaches the wrong place, or no value where one was owed (issue 30
# found six such that the operator swaps above never make). Each is a kind, applied wherever its pattern
# matches in a target's files, like the operators.
WIRING = [
    # a keyword argument taken from another object left out: the callee's default applies instead
    ("keyword wire dropped", r"\b\w+=[a-z_]+(?:\.[a-z_]+)+\)", ")"),
    # the last positional argument taken from an object left out (a defaulted parameter: the default applies)
    ("last argument dropped", r", (?:self|config|run)\.[a-z_]+\)(\s*)$", r")\1"),
    # the sibling of the same kind passed instead: the last checkpoint's variables for the best one's
    ("best -> last", r"\bbest\.variables\b", "last.variables"),
    # a score that counts always answering the largest group as right: plain for balanced accuracy
    ("balanced -> plain accuracy", r"\bbalanced_accuracy\(([\w\[\]]+), ([\w\[\]]+)\)", r"float(np.mean(\1 == \2))"),
    # a share (or any factor) of a threshold left out: `x <= share * total` -> `x <= total`
    ("threshold factor dropped", r"(<=|>=|<|>) [a-z_]+ \* ([a-z_]+)", r"\1 \2"),
    # a seed mixed into a counter-based key by addition, unhashed: seed s is seed 0 shifted by s examples
    ("seed as an index offset", r"_splitmix64\((np\.full_like\(\w+, [^()]*\))\) \^ (\w+)", r"\1 + \2"),
]


def code_lines(path: str) -> list[tuple[int, str]]:
    """(line number, text) of the code lines: docstrings, comments, blank lines, imports left out."""
    out, in_doc = [], False
    with open(path) as f:
        for n, line in enumerate(f, 1):
            stripped = line.strip()
            quotes = stripped.count('"""') + stripped.count("'''")
            if in_doc:
                if quotes % 2 == 1:
                    in_doc = False
                continue
            if stripped.startswith(('"""', "'''")):
                if quotes == 1:
                    in_doc = True
                continue
            if not stripped or stripped.startswith(("#", "import ", "from ", "raise ", "@")):
                continue
            out.append((n, line))
    return out


def mutants(path: str, operators=OPERATORS) -> list[tuple[int, str, str, str]]:
    """(line number, operator, original line, mutated line) for every operator that applies to a code line."""
    found = []
    for n, line in code_lines(path):
        code, hash_, comment = line.partition("  #")
        if re.search(r"UserError|ValueError|f\"|print\(", code):
            continue  # messages and checks of bad input are not equations
        for name, pattern, repl in operators:
            new_code, count = re.subn(pattern, repl, code, count=1)
            if count and new_code != code:
                found.append((n, name, line, new_code + hash_ + comment))
    return found


def run_tests(root: str, tests: list[str], timeout: int, attempts: int = 3) -> bool:
    """True when the tests fail (the mutant is killed): a failing test, a collection error or a hang.

    A test process ended by a signal from outside (killed, terminated) says nothing about the
    mutant: it is run again, up to `attempts` times.
    """
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(attempts):
        try:
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                               cwd=root, env=env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return True  # a mutant that hangs the tests is caught
        if r.returncode >= 0:
            return r.returncode != 0
    sys.exit(f"the tests were ended by a signal {attempts} times in a row; run the check again")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: all")
    ap.add_argument("--max", type=int, default=0, help="at most this many mutants per target, spread evenly")
    ap.add_argument("--operators", choices=("all", "swaps", "wiring"), default="all",
                    help="the kinds of mistakes: operator swaps (OPERATORS), wiring mistakes (WIRING), or both")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per test run")
    ap.add_argument("--tests_from", metavar="COMMIT", help="check today's code with the tests/ folder of this "
                    "git commit (the same mutants, the older tests: a kill rate 'before' new tests)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ccjax-mutants-")
    try:
        shutil.copytree(ROOT, os.path.join(work, "repo"), ignore=shutil.ignore_patterns(
            ".git", "runs", "__pycache__", "*.egg-info", ".pytest_cache"))
        if args.tests_from:
            use_tests_from(os.path.join(work, "repo"), args.tests_from)
        check(os.path.join(work, "repo"), args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def use_tests_from(root: str, commit: str) -> None:
    """Replace the copy's tests/ with the tests/ folder of `commit` in this checkout's git history."""
    shutil.rmtree(os.path.join(root, "tests"))
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "tests"], capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"--tests_from={commit}: {archive.stderr.decode().strip() or 'git archive failed'}")
    subprocess.run(["tar", "-x", "-C", root], input=archive.stdout, check=True)
    print(f"tests/ from {commit}", flush=True)


def check(root: str, args) -> None:
    total = killed = 0
    survivors = []
    for target in args.target or sorted(TARGETS):
        files, tests = TARGETS[target]
        missing = [t for t in tests if not os.path.exists(os.path.join(root, t.split("::")[0]))]
        if missing:  # e.g. a run on an older checkout, to compare kill rates before and after new tests
            print(f"{target}: not in this checkout, left out: {' '.join(missing)}", flush=True)
            tests = [t for t in tests if t not in missing]
        operators = {"swaps": OPERATORS, "wiring": WIRING, "all": OPERATORS + WIRING}[args.operators]
        todo = [(f, *m) for f in files for m in mutants(os.path.join(root, f), operators)]
        if args.max and len(todo) > args.max:
            step = len(todo) / args.max
            todo = [todo[int(i * step)] for i in range(args.max)]
        print(f"{target}: {len(todo)} mutants, tests {' '.join(tests)}", flush=True)
        if not args.list and run_tests(root, tests, args.timeout):  # a failing baseline would kill every mutant
            sys.exit(f"the tests of {target} fail without any mutation; fix them before a mutation check")
        for f, n, name, before, after in todo:
            if args.list:
                print(f"  {f}:{n} [{name}] {before.strip()}  ->  {after.strip()}")
                continue
            path = os.path.join(root, f)
            with open(path) as fh:
                original = fh.read()
            lines = original.splitlines(keepends=True)
            lines[n - 1] = after
            t0 = time.time()
            try:
                with open(path, "w") as fh:
                    fh.write("".join(lines))
                dead = run_tests(root, tests, args.timeout)
            finally:
                with open(path, "w") as fh:
                    fh.write(original)
            total += 1
            killed += dead
            status = "killed" if dead else "SURVIVED"
            print(f"  {status:8s} {f}:{n} [{name}] ({time.time() - t0:.0f} s)", flush=True)
            if not dead:
                survivors.append(f"{f}:{n} [{name}] {before.strip()}  ->  {after.strip()}")
    if args.list:
        return
    print(f"\nkill rate: {killed}/{total} = {100 * killed / max(total, 1):.1f} %")
    for s in survivors:
        print(f"  survived: {s}")


if __name__ == "__main__":
    main()
