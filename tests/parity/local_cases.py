"""Parity cases on local files: seeded random trees, every argument of ``add_file``, ``add_dir``,
``new_file`` and ``add``, both policies, both digest algorithms, and ``file://`` references."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.parity.cases import (
    Context,
    Step,
    add_dir,
    add_file,
    add_object,
    add_reference,
    as_path,
    case,
    new_file,
    random_tree,
)

ALL_OR_NONE = "add_dir is all or none"
ALGORITHMS = {"md5": "MD5", "xxh128": "XXH128"}  # W&B's spelling (ours accepts both)
POLICIES = ("mutable", "immutable")

# -- seeded random trees -------------------------------------------------------------------------
TREES = {seed: files for seed, files in [(1, 60), (2, 60), (3, 80), (4, 40), (5, 100)]}


def _tree_case(seed: int, files: int, algorithm: str, policy: str, prefix: str | None) -> None:
    def build(ctx: Context) -> list[Step]:
        random_tree(ctx.root / "tree", seed, files)
        kwargs: dict[str, Any] = {"policy": policy}
        if prefix is not None:
            kwargs["name"] = prefix
        return [add_dir(str(ctx.root / "tree"), **kwargs)]

    name = f"tree-seed{seed}-{files}files-{algorithm}-{policy}" + (
        f"-under-{prefix.strip('/').replace('/', '-')}" if prefix else ""
    )
    case("local", name, artifact={"digest_algorithm": ALGORITHMS[algorithm]})(build)


for _seed, _files in TREES.items():
    for _algorithm in ALGORITHMS:
        for _policy in POLICIES:
            _tree_case(_seed, _files, _algorithm, _policy, None)
    _tree_case(_seed, _files, "md5", "mutable", "nested/prefix/")


@case("local", "tree-files-one-by-one-with-odd-names")
def _tree_by_file(ctx: Context) -> list[Step]:
    written = random_tree(ctx.root / "tree", 11, 40)
    return [add_file(str(ctx.root / "tree" / rel), name=rel) for rel in sorted(written)]


@case("local", "tree-as-file-references")
def _tree_references(ctx: Context) -> list[Step]:
    random_tree(ctx.root / "tree", 12, 40)
    return [add_reference(f"file://{ctx.root / 'tree'}", name="refs")]


@case("local", "tree-as-file-references-unchecksummed")
def _tree_references_unchecksummed(ctx: Context) -> list[Step]:
    random_tree(ctx.root / "tree", 13, 30)
    return [add_reference(f"file://{ctx.root / 'tree'}", checksum=False)]


@case("local", "tree-as-percent-encoded-file-references")
def _tree_references_encoded(ctx: Context) -> list[Step]:
    random_tree(ctx.root / "my tree é", 14, 30)
    return [add_reference((ctx.root / "my tree é").as_uri(), name="refs")]


# -- add_file -------------------------------------------------------------------------------------
def _files(ctx: Context) -> dict[str, str]:
    return {
        "hello": ctx.file("src/hello.txt", "hello"),
        "other": ctx.file("src/other.txt", "other bytes"),
        "empty": ctx.file("src/empty.bin", b""),
        "archive": ctx.file("src/data.tar.gz", b"\x1f\x8b archive"),
        "hidden": ctx.file("src/.hidden", "dot file"),
        "plain": ctx.file("src/Makefile", "all:\n"),
        "big": ctx.file("src/big.bin", bytes(range(256)) * 9000),  # > 2 MiB: several chunks
    }


def _file_case(case_id: str, *steps: Any, **options: Any) -> None:
    def build(ctx: Context) -> list[Step]:
        files = _files(ctx)
        return [step(files) for step in steps]

    case("local", case_id, **options)(build)


_file_case("add_file", lambda f: add_file(f["hello"]))
_file_case("add_file-name-nested", lambda f: add_file(f["hello"], name="a/b/c.txt"))
_file_case("add_file-name-empty-string", lambda f: add_file(f["hello"], name=""))
_file_case("add_file-name-dot-slash", lambda f: add_file(f["hello"], name="./x/./y.txt"))
_file_case("add_file-name-double-slash", lambda f: add_file(f["hello"], name="x//y.txt"))
_file_case("add_file-name-trailing-slash", lambda f: add_file(f["hello"], name="x/y/"))
_file_case("add_file-name-backslash", lambda f: add_file(f["hello"], name="dir\\file.txt"))
_file_case("add_file-name-unicode-nfd", lambda f: add_file(f["hello"], name="cafe\u0301.txt"))
_file_case("add_file-name-absolute", lambda f: add_file(f["hello"], name="/etc/passwd"))
_file_case("add_file-name-parent", lambda f: add_file(f["hello"], name="../escape.txt"))
_file_case("add_file-name-windows-parent", lambda f: add_file(f["hello"], name="a\\..\\..\\b"))
_file_case("add_file-name-windows-drive", lambda f: add_file(f["hello"], name="c:evil.txt"))
_file_case("add_file-name-windows-root", lambda f: add_file(f["hello"], name="\\root.txt"))
_file_case("add_file-name-colon-later", lambda f: add_file(f["hello"], name="ab:c.txt"))
_file_case("add_file-pathlib", lambda f: add_file(as_path(f["hello"])))
_file_case("add_file-empty", lambda f: add_file(f["empty"]))
_file_case("add_file-big", lambda f: add_file(f["big"]))
_file_case("add_file-skip_cache", lambda f: add_file(f["hello"], skip_cache=True))
_file_case("add_file-skip_cache-false", lambda f: add_file(f["hello"], skip_cache=False))
_file_case("add_file-is_tmp", lambda f: add_file(f["archive"], is_tmp=True))
_file_case("add_file-is_tmp-named", lambda f: add_file(f["archive"], name="d/x.y.z", is_tmp=True))
_file_case("add_file-is_tmp-no-suffix", lambda f: add_file(f["plain"], is_tmp=True))
_file_case("add_file-is_tmp-dotfile", lambda f: add_file(f["hidden"], is_tmp=True))
_file_case("add_file-is_tmp-false", lambda f: add_file(f["archive"], is_tmp=False))
_file_case(
    "add_file-is_tmp-xxh128",
    lambda f: add_file(f["archive"], is_tmp=True),
    artifact={"digest_algorithm": "XXH128"},
)
for _policy in (*POLICIES, None):
    _file_case(f"add_file-policy-{_policy}", lambda f, p=_policy: add_file(f["hello"], policy=p))
_file_case("add_file-policy-unknown", lambda f: add_file(f["hello"], policy="frozen"))
_file_case(
    "add_file-same-name-same-bytes",
    lambda f: add_file(f["hello"], name="x.txt"),
    lambda f: add_file(f["hello"], name="x.txt"),
)
_file_case(
    "add_file-same-name-other-bytes",
    lambda f: add_file(f["hello"], name="x.txt"),
    lambda f: add_file(f["other"], name="x.txt"),
)
_file_case(
    "add_file-overwrite",
    lambda f: add_file(f["hello"], name="x.txt"),
    lambda f: add_file(f["other"], name="x.txt", overwrite=True),
)
_file_case(
    "add_file-all-arguments-positional",
    lambda f: add_file(f["archive"], "p/archive.tgz", False, True, "immutable", True),
)
_file_case("add_file-folder", lambda f: add_file(os.path.dirname(f["hello"])))
_file_case("add_file-missing", lambda f: add_file(f["hello"] + ".missing"))
for _algorithm in ALGORITHMS.values():
    _file_case(
        f"add_file-every-kind-{_algorithm}",
        *[lambda f, key=key: add_file(f[key]) for key in ("hello", "empty", "big", "hidden")],
        artifact={"digest_algorithm": _algorithm},
    )


@case("local", "add_file-through-symlink")
def _symlinked_file(ctx: Context) -> list[Step]:
    target = ctx.file("real.txt", "real")
    os.symlink(target, ctx.root / "link.txt")
    return [add_file(str(ctx.root / "link.txt"))]


@case(
    "local",
    "artifact-digest_algorithm-lowercase",
    artifact={"digest_algorithm": "xxh128"},
    deliberate="'xxh128' is a name too",
)
def _lowercase_algorithm(ctx: Context) -> list[Step]:
    return [add_file(ctx.file("a.txt", "a"))]


# -- add_dir --------------------------------------------------------------------------------------
def _dir(ctx: Context, name: str = "dir", **files: bytes | str) -> str:
    contents = files or {"a.txt": "a", "sub/b.txt": "b", "sub/deeper/c.txt": "c", "empty": ""}
    return ctx.folder(name, contents)


def _dir_case(case_id: str, make_steps: Any, **options: Any) -> None:
    case("local", case_id, **options)(lambda ctx: make_steps(ctx))


_dir_case("add_dir", lambda ctx: [add_dir(_dir(ctx))])
_dir_case("add_dir-name", lambda ctx: [add_dir(_dir(ctx), name="under/here")])
_dir_case("add_dir-name-trailing-slash", lambda ctx: [add_dir(_dir(ctx), name="under/")])
_dir_case("add_dir-name-empty-string", lambda ctx: [add_dir(_dir(ctx), name="")])
_dir_case("add_dir-pathlib", lambda ctx: [add_dir(as_path(_dir(ctx)))])
_dir_case("add_dir-relative-with-dots", lambda ctx: [add_dir(_dir(ctx) + "/sub/../sub")])
_dir_case("add_dir-skip_cache", lambda ctx: [add_dir(_dir(ctx), skip_cache=True)])
for _policy in (*POLICIES, None):
    _dir_case(f"add_dir-policy-{_policy}", lambda ctx, p=_policy: [add_dir(_dir(ctx), policy=p)])
_dir_case("add_dir-policy-unknown", lambda ctx: [add_dir(_dir(ctx), policy="frozen")])
_dir_case("add_dir-empty", lambda ctx: [add_dir(ctx.folder("empty", {}))])
_dir_case("add_dir-a-file", lambda ctx: [add_dir(ctx.file("f.txt", "f"))])
_dir_case("add_dir-missing", lambda ctx: [add_dir(str(ctx.root / "nope"))])
_dir_case(
    "add_dir-twice-same-bytes",
    lambda ctx: [add_dir(_dir(ctx)), add_dir(_dir(ctx, "copy"))],
)
_dir_case(
    "add_dir-merge-false-conflict",
    lambda ctx: [
        add_dir(_dir(ctx, "one", **{"x.txt": "one", "only-one.txt": "1"})),
        add_dir(_dir(ctx, "two", **{"x.txt": "two", "only-two.txt": "2"}), merge=False),
    ],
    deliberate=ALL_OR_NONE,
    ours=lambda result: _assert_paths(result, {"x.txt", "only-one.txt"}),
)
_dir_case(
    "add_dir-merge-true",
    lambda ctx: [
        add_dir(_dir(ctx, "one", **{"x.txt": "one", "only-one.txt": "1"})),
        add_dir(_dir(ctx, "two", **{"x.txt": "two", "only-two.txt": "2"}), merge=True),
    ],
)
_dir_case(
    "add_dir-all-arguments-positional",
    lambda ctx: [add_dir(_dir(ctx), "pre", True, "immutable", True)],
)
_dir_case(
    "add_dir-then-add_file-overwrite",
    lambda ctx: [
        add_dir(_dir(ctx)),
        add_file(ctx.file("new-a.txt", "new a"), name="a.txt", overwrite=True),
    ],
)


def _assert_paths(result: dict[str, Any], paths: set[str]) -> None:
    assert set(result["entries"]) == paths, sorted(result["entries"])


@case("local", "add_dir-symlinked-folder-and-file")
def _symlinked_folder(ctx: Context) -> list[Step]:
    outside = _dir(ctx, "outside")
    tree = _dir(ctx, "tree", **{"own.txt": "own"})
    os.symlink(outside, Path(tree) / "linked-folder")
    os.symlink(Path(outside) / "a.txt", Path(tree) / "linked-file.txt")
    return [add_dir(tree)]


@case(
    "local",
    "add_dir-symlink-loop",
    deliberate="Link loops are left out",
    ours=lambda result: _assert_paths(result, {"a.txt", "sub/b.txt"}),
)
def _symlink_loop(ctx: Context) -> list[Step]:
    tree = _dir(ctx, "tree", **{"a.txt": "a", "sub/b.txt": "b"})
    os.symlink("..", Path(tree) / "sub" / "back-up")
    return [add_dir(tree)]


@case(
    "local",
    "add_dir-dangling-symlink",
    deliberate=ALL_OR_NONE,
    ours=lambda result: (_assert_errors(result, {"0"}), _assert_paths(result, set())),
)
def _dangling(ctx: Context) -> list[Step]:
    tree = _dir(ctx)
    os.symlink(str(ctx.root / "nowhere"), Path(tree) / "dangling.txt")
    return [add_dir(tree)]


# -- new_file -------------------------------------------------------------------------------------
_NEW = "héllo wörld\nsecond line\r\nthird\n"
for _case_id, _step in {
    "new_file": new_file("notes.txt", text=_NEW),
    "new_file-nested": new_file("a/b/notes.txt", text=_NEW),
    "new_file-mode-w": new_file("notes.txt", text=_NEW, mode="w"),
    "new_file-mode-xb": new_file("blob.bin", data=bytes(range(256)), mode="xb"),
    "new_file-mode-wb": new_file("blob.bin", data=b"\x00\xff", mode="wb"),
    "new_file-encoding-latin-1": new_file("l1.txt", text="café", encoding="latin-1"),
    "new_file-encoding-utf-16": new_file("u16.txt", text="café", encoding="utf-16"),
    "new_file-encoding-utf-8": new_file("u8.txt", text="café", mode="x", encoding="utf-8"),
    "new_file-policy-mutable": new_file("p.txt", text="p", policy="mutable"),
    "new_file-policy-immutable": new_file("p.txt", text="p", policy="immutable"),
    "new_file-all-arguments-positional": new_file("p.txt", "w", "utf-8", "immutable", text="p"),
    "new_file-empty": new_file("empty.txt", text=""),
    "new_file-name-parent": new_file("../escape.txt", text="x"),
    "new_file-name-absolute": new_file("/abs.txt", text="x"),
}.items():
    case("local", _case_id)(lambda ctx, s=_step: [s])
    case("local", _case_id + "-xxh128", artifact={"digest_algorithm": "XXH128"})(
        lambda ctx, s=_step: [s]
    )

case("local", "new_file-twice-mode-x")(
    lambda ctx: [new_file("n.txt", text="one"), new_file("n.txt", text="two")]
)
case("local", "new_file-twice-mode-w")(
    lambda ctx: [new_file("n.txt", text="one", mode="w"), new_file("n.txt", text="two", mode="w")]
)
case("local", "new_file-after-add_file-mode-w")(
    lambda ctx: [
        add_file(ctx.file("n.txt", "file"), name="n.txt"),
        new_file("n.txt", text="new", mode="w"),
    ]
)

# -- add (tables) ---------------------------------------------------------------------------------
_TABLES: dict[str, dict[str, Any]] = {
    "numbers-and-strings": {"columns": ["a", "b"], "data": [[1, "x"], [2.5, None], [3, "z"]]},
    "booleans": {"columns": ["flag", "n"], "data": [[True, 1], [False, 2], [None, 3]]},
    "unicode": {"columns": ["é", "日本"], "data": [["café", "語"], ["🎉", "Ω"]]},
    "empty": {"columns": ["a", "b"], "data": []},
    "int-columns": {"columns": [1, 2], "data": [[1, 2]]},
    "lists": {"columns": ["l"], "data": [[[1, 2, 3]], [[4]], [[]]]},
    "dicts": {"columns": ["d"], "data": [[{"k": 1, "s": "x"}], [{"k": 2, "s": "y"}]]},
    "large-ints-and-floats": {"columns": ["i", "f"], "data": [[2**53, 1e-300], [-(2**40), 1.5]]},
    "default-columns": {"columns": None, "data": [[1, 2, 3]]},
}
for _name, _table in _TABLES.items():
    case("local", f"add-table-{_name}")(
        lambda ctx, t=_table: [add_object({"table": t}, "tables/t")]
    )
case("local", "add-table-xxh128", artifact={"digest_algorithm": "XXH128"})(
    lambda ctx: [add_object({"table": _TABLES["numbers-and-strings"]}, "t")]
)
case("local", "add-dataframe-table")(
    lambda ctx: [
        add_object(
            {"dataframe": {"columns": ["i", "f", "s", "b"], "data": [[1, 0.5, "x", True]] * 3}},
            "frame",
        )
    ]
)
case("local", "add-partitioned-table")(
    lambda ctx: [add_object({"partitioned_table": "parts"}, "joined")]
)
case("local", "add-table-media-tables-name")(
    lambda ctx: [add_object({"table": _TABLES["numbers-and-strings"]}, "media/tables/t")]
)
case("local", "add-table-twice-overwrite")(
    lambda ctx: [
        add_object({"table": _TABLES["numbers-and-strings"]}, "t"),
        add_object({"table": _TABLES["booleans"]}, "t", overwrite=True),
    ]
)
case(
    "local",
    "add-table-twice-no-overwrite",
    deliberate="add() refuses a taken name",
    ours=lambda result: _assert_errors(result, {"1"}),
)(
    lambda ctx: [
        add_object({"table": _TABLES["numbers-and-strings"]}, "t"),
        add_object({"table": _TABLES["booleans"]}, "t"),
    ]
)


def _assert_errors(result: dict[str, Any], steps: set[str]) -> None:
    assert set(result["errors"]) == steps, result["errors"]


# -- file:// references ----------------------------------------------------------------------------
def _ref_tree(ctx: Context, name: str = "refs") -> Path:
    return Path(
        ctx.folder(name, {"a.txt": "a", "sub/b.txt": "bb", "sub/deeper/c.txt": "ccc", "e": ""})
    )


for _checksum in (True, False):
    _suffix = "" if _checksum else "-unchecksummed"
    case("local", f"file-ref-file{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx) / 'a.txt'}", checksum=c)]
    )
    case("local", f"file-ref-file-named{_suffix}")(
        lambda ctx, c=_checksum: [
            add_reference(f"file://{_ref_tree(ctx) / 'a.txt'}", name="x/y.txt", checksum=c)
        ]
    )
    case("local", f"file-ref-folder{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx)}", checksum=c)]
    )
    case("local", f"file-ref-folder-named{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx)}", name="n", checksum=c)]
    )
    case("local", f"file-ref-folder-trailing-slash{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx)}/", checksum=c)]
    )
    case("local", f"file-ref-as_uri-percent-encoded{_suffix}")(
        lambda ctx, c=_checksum: [
            add_reference(_ref_tree(ctx, "my refs é#%").as_uri(), name="enc", checksum=c)
        ]
    )
    case("local", f"file-ref-as_uri-file{_suffix}")(
        lambda ctx, c=_checksum: [
            add_reference((_ref_tree(ctx, "my refs é#%") / "sub" / "b.txt").as_uri(), checksum=c)
        ]
    )
    case("local", f"file-ref-raw-spaces{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx, 'a b c')}", checksum=c)]
    )
    case("local", f"file-ref-single-slash-form{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file:{_ref_tree(ctx)}", name="s", checksum=c)]
    )
    case("local", f"file-ref-localhost-form{_suffix}")(
        lambda ctx, c=_checksum: [
            add_reference(f"file://localhost{_ref_tree(ctx)}", name="l", checksum=c)
        ]
    )
    case("local", f"file-ref-xxh128{_suffix}", artifact={"digest_algorithm": "XXH128"})(
        lambda ctx, c=_checksum: [add_reference(f"file://{_ref_tree(ctx)}", checksum=c)]
    )
    case("local", f"file-ref-missing{_suffix}")(
        lambda ctx, c=_checksum: [add_reference(f"file://{ctx.root}/missing", checksum=c)]
    )

for _limit, _label in [(4, "equal"), (5, "above"), (3, "below"), (0, "zero"), (None, "none")]:
    case("local", f"file-ref-max_objects-{_label}")(
        lambda ctx, n=_limit: [add_reference(f"file://{_ref_tree(ctx)}", max_objects=n)]
    )


@case("local", "file-ref-folder-with-symlinks")
def _ref_symlinks(ctx: Context) -> list[Step]:
    tree = _ref_tree(ctx)
    outside = _dir(ctx, "outside")
    os.symlink(outside, tree / "linked-folder")
    os.symlink(tree / "a.txt", tree / "linked-a.txt")
    return [add_reference(f"file://{tree}")]


@case("local", "file-ref-all-arguments-positional")
def _ref_positional(ctx: Context) -> list[Step]:
    return [add_reference(f"file://{_ref_tree(ctx)}", "named", True, 10)]


@case("local", "ref-no-scheme")
def _no_scheme(ctx: Context) -> list[Step]:
    return [add_reference(str(_ref_tree(ctx) / "a.txt"))]


@case("local", "ref-unknown-scheme-named")
def _unknown_named(ctx: Context) -> list[Step]:
    return [add_reference("foo://bucket/path/x.bin", name="x.bin")]


@case("local", "ref-unknown-scheme-unnamed")
def _unknown_unnamed(ctx: Context) -> list[Step]:
    return [add_reference("foo://bucket/path/x.bin")]


@case("local", "mixed-files-refs-tables-xxh128", artifact={"digest_algorithm": "XXH128"})
def _mixed(ctx: Context) -> list[Step]:
    return [
        add_dir(_dir(ctx), name="files"),
        add_reference(f"file://{_ref_tree(ctx)}", name="refs"),
        add_reference(f"file://{_ref_tree(ctx)}", name="unchecked", checksum=False),
        new_file("notes.txt", text="notes"),
        add_object({"table": _TABLES["unicode"]}, "t"),
    ]


# -- more arguments and corners ---------------------------------------------------------------------
_file_case("add_file-name-pathlib", lambda f: add_file(f["hello"], name=as_path("p/q.txt")))
_dir_case("add_dir-name-pathlib", lambda ctx: [add_dir(_dir(ctx), name=as_path("under"))])
_dir_case("add_dir-name-unicode-nfd", lambda ctx: [add_dir(_dir(ctx), name="cafe\u0301")])
_dir_case("add_dir-name-backslash", lambda ctx: [add_dir(_dir(ctx), name="a\\b")])
case("local", "file-ref-name-pathlib")(
    lambda ctx: [add_reference(f"file://{_ref_tree(ctx)}", name=as_path("p"))]
)
case("local", "file-ref-empty-folder")(
    lambda ctx: [add_reference(f"file://{ctx.folder('nothing', {})}")]
)
case("local", "file-ref-same-name-other-bytes")(
    lambda ctx: [
        add_reference(f"file://{ctx.file('one/x.txt', 'one')}"),
        add_reference(f"file://{ctx.file('two/x.txt', 'two')}"),
    ]
)
case("local", "file-ref-then-add_file-same-name")(
    lambda ctx: [
        add_reference(f"file://{ctx.file('one/x.txt', 'one')}"),
        add_file(ctx.file("two/x.txt", "two")),
    ]
)
case("local", "file-ref-twice-same-file")(
    lambda ctx: [
        add_reference(f"file://{ctx.file('one/x.txt', 'one')}"),
        add_reference(f"file://{ctx.file('one/x.txt', 'one')}"),
    ]
)


@case("local", "file-ref-through-symlinked-file")
def _ref_symlinked_file(ctx: Context) -> list[Step]:
    target = ctx.file("real.txt", "real")
    os.symlink(target, ctx.root / "link.txt")
    return [add_reference(f"file://{ctx.root / 'link.txt'}")]


@case("local", "file-ref-through-symlinked-file-unchecksummed")
def _ref_symlinked_file_unchecksummed(ctx: Context) -> list[Step]:
    target = ctx.file("real.txt", "real")
    os.symlink(target, ctx.root / "link.txt")
    return [add_reference(f"file://{ctx.root / 'link.txt'}", checksum=False)]


@case(
    "local",
    "file-ref-max_objects-default",
    deliberate="max_objects defaults to the documented 10,000",
    ours=lambda result: _assert_errors(result, {"0"}),
)
def _ref_default_limit(ctx: Context) -> list[Step]:
    folder = ctx.root / "many"
    folder.mkdir()
    for index in range(10_001):
        (folder / f"{index:05d}").write_bytes(b"")
    return [add_reference(f"file://{folder}")]
