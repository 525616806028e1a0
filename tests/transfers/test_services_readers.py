"""Reading import files: formats, encodings, delimiters and the errors people get."""

from __future__ import annotations

import codecs
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import AttributeFactory
from transfers.imports.mapping import auto_map, validate_mapping
from transfers.imports.readers import FileFormatError, analyze, check_text, open_rows


def rows_of(content: bytes, file_format: str = "csv", delimiter: str = ","):
    _header, rows = open_rows(io.BytesIO(content), file_format=file_format, delimiter=delimiter)
    return list(rows)


@pytest.mark.parametrize(
    ("content", "delimiter"),
    [
        (b"email;name\na@example.com;Ann\n", ";"),
        (b"email\tname\na@example.com\tAnn\n", "\t"),
        (b"email|name\na@example.com|Ann\n", "|"),
        (b"email,name\na@example.com,Ann\n", ","),
    ],
)
def test_it_detects_the_delimiter(content, delimiter):
    analysis = analyze(io.BytesIO(content), filename="x.csv")

    assert analysis.delimiter == delimiter
    assert analysis.columns == ["email", "name"]
    assert analysis.sample[0].values == {"email": "a@example.com", "name": "Ann"}


def test_it_reads_utf8_with_a_byte_order_mark_and_quoted_cells_with_newlines():
    content = codecs.BOM_UTF8 + 'name,note\n"Müller, Jörg","two\nlines"\n'.encode()

    analysis = analyze(io.BytesIO(content), filename="x.csv")

    assert analysis.columns == ["name", "note"]
    assert analysis.sample[0].values == {"name": "Müller, Jörg", "note": "two\nlines"}
    assert analysis.sample[0].number == 2


def test_rows_are_numbered_as_a_spreadsheet_shows_them_and_blank_lines_are_skipped():
    rows = rows_of(b"email\na@example.com\n\n,\nb@example.com\n")

    assert [(r.number, r.values["email"]) for r in rows] == [
        (2, "a@example.com"),
        (5, "b@example.com"),
    ]


def test_a_row_with_more_cells_than_columns_is_a_row_error_not_a_file_error():
    rows = rows_of(b"email,name\na@example.com,Ann,extra\nb@example.com,Bob\n")

    assert "3 cells" in rows[0].error
    assert rows[1].error == ""


def test_the_exports_formula_guard_is_undone_on_import():
    rows = rows_of(b"name,phone\n'=Boss,'+14155550123\n")

    assert rows[0].values == {"name": "=Boss", "phone": "+14155550123"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("name\nMüller\n".encode("latin-1"), "not UTF-8"),
        (codecs.BOM_UTF16_LE + "name\n".encode("utf-16-le"), "UTF-16"),
    ],
)
def test_files_that_are_not_utf8_text_are_refused_with_what_to_do(content, message):
    with pytest.raises(FileFormatError, match=message):
        analyze(io.BytesIO(content), filename="x.csv")


def test_an_unclosed_quote_names_its_row():
    with pytest.raises(FileFormatError, match=r"Row 3: a quoted cell is never closed"):
        rows_of(b'email,name\na@example.com,Ann\nb@example.com,"Bob\nc@example.com,Cy\n')


def test_a_header_with_a_repeated_column_is_refused():
    with pytest.raises(
        FileFormatError, match=r"“email” appears twice in the first row \(columns 1 and 3\)"
    ):
        analyze(io.BytesIO(b"Email,name,email\n"), filename="x.csv")


def test_json_must_be_an_array_of_objects():
    with pytest.raises(FileFormatError, match="array of contact objects"):
        analyze(io.BytesIO(b'{"email": "a@example.com"}'), filename="x.json")
    rows = rows_of(b'[{"email": "a@example.com"}, 42]', "json")
    assert rows[0].values == {"email": "a@example.com"}
    assert rows[1].error == "Item 2 is not an object of contact fields."


def test_json_lines_report_the_line_of_invalid_json():
    with pytest.raises(FileFormatError, match="Line 3 is not valid JSON"):
        rows_of(b'{"email": "a@example.com"}\n\n{"email": \n', "jsonl")


def too_deep(what: str) -> str:
    return (
        f"{what} nests lists or objects more than 5 levels deep, which no contact needs (a "
        "contact is an object of values, lists of values and a list of Stripe accounts). "
        "Flatten it and upload the file again."
    )


def deep_object(levels: int) -> bytes:
    return b'{"a": ' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize(
    ("content", "file_format", "message"),
    [
        (b"[" * 1000 + b"]" * 1000, "json", too_deep("Item 1")),
        (b'[{"email": "a@example.com"}, ' + deep_object(1000) + b"]", "json", too_deep("Item 2")),
        (
            b'{"email": "a@example.com"}\n\n' + deep_object(1000) + b"\n",
            "jsonl",
            too_deep("Line 3"),
        ),
        (b'{"email": "a@example.com"}\n' + b"[" * 1000 + b"]" * 1000, "jsonl", too_deep("Line 2")),
    ],
    ids=["json-arrays", "json-objects", "jsonl-objects", "jsonl-arrays"],
)
def test_json_nested_far_deeper_than_a_contact_is_refused_naming_the_item(
    content, file_format, message
):
    with pytest.raises(FileFormatError) as refused:
        rows_of(content, file_format)

    assert str(refused.value) == message


def test_a_json_row_may_nest_five_levels_and_not_six():
    five = {"email": "a@example.com", "stripe_accounts": [{"label": [["x"]]}]}
    six = {"email": "b@example.com", "stripe_accounts": [{"label": [[["x"]]]}]}

    assert rows_of(json.dumps([five, five]).encode(), "json")[1].values == five
    assert rows_of(json.dumps(five).encode() + b"\n", "jsonl")[0].values == five
    with pytest.raises(FileFormatError, match=r"^Item 2 nests lists or objects more than 5 "):
        rows_of(json.dumps([five, six]).encode(), "json")
    with pytest.raises(FileFormatError, match=r"^Line 2 nests lists or objects more than 5 "):
        rows_of(f"{json.dumps(five)}\n{json.dumps(six)}\n".encode(), "jsonl")


# Reads 1 MB files of nested brackets, as the upload (analyze) and the import's scan
# (open_rows) do, in a process that may use 256 MB of address space in all.
MEMORY_PROBE = """
import io, resource, django
django.setup()
from transfers.imports.readers import FileFormatError, analyze, open_rows

mb = 1024 * 1024
levels = mb // 6  # {"a": and } are six bytes a level
files = {
    "arrays.json": b"[" * (mb // 2) + b"]" * (mb // 2),
    "objects.json": b"[" + b'{"a":' * levels + b"1" + b"}" * levels + b"]",
    "objects.jsonl": b'{"a":' * levels + b"1" + b"}" * levels + b"\\n",
}
limit = 256 * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
for name, content in files.items():
    assert len(content) >= mb - 8, len(content)
    for step in ("upload", "scan"):
        binary = io.BytesIO(content)
        try:
            if step == "upload":
                analyze(binary, filename=name)
            else:
                list(open_rows(binary, file_format=name.rsplit(".", 1)[1])[1])
        except FileFormatError as exc:
            print(name, step, "refused:", exc)
        else:
            print(name, step, "read")
"""


def test_deeply_nested_json_is_refused_within_256_mb_of_memory():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}

    result = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", MEMORY_PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        f"{name} {step} refused: {too_deep(what)}"
        for name, what in (
            ("arrays.json", "Item 1"),
            ("objects.json", "Item 1"),
            ("objects.jsonl", "Line 1"),
        )
        for step in ("upload", "scan")
    ]


def test_the_format_comes_from_the_name_else_from_the_first_character():
    assert analyze(io.BytesIO(b'[{"a": 1}]'), filename="upload").file_format == "json"
    assert analyze(io.BytesIO(b'{"a": 1}\n'), filename="upload").file_format == "jsonl"
    assert analyze(io.BytesIO(b"a,b\n1,2\n"), filename="upload").file_format == "csv"


def test_check_text_accepts_a_multibyte_character_cut_at_the_end_of_the_sample():
    check_text("name\nJörg".encode()[:-1])


@pytest.mark.django_db
def test_columns_map_by_synonym_attribute_key_and_label(agent):
    AttributeFactory(agent=agent, key="mrr", label="Monthly revenue", type="number")
    AttributeFactory(agent=agent, key="plan", label="Plan", type="text")
    definitions = list(agent.attribute_definitions.all())
    columns = ["Customer ID", "First Name", "Last name", "E-mail", "Monthly Revenue",
               "attributes.plan", "created_at", "Favourite colour"]  # fmt: skip

    suggestion = auto_map(columns, definitions, [{"Favourite colour": "blue"}])

    assert suggestion.mapping == {
        "Customer ID": "external_id",
        "First Name": "first_name",
        "Last name": "last_name",
        "E-mail": "email",
        "Monthly Revenue": "attr:mrr",
        "attributes.plan": "attr:plan",
        "created_at": "ignore",
        "Favourite colour": "ignore",
    }
    assert suggestion.new_attributes == {"favourite_colour": "text"}
    created = auto_map(columns, definitions, [], create_unknown=True)
    assert created.mapping["Favourite colour"] == "new:favourite_colour"


@pytest.mark.django_db
def test_a_mapping_with_two_columns_on_one_field_is_refused(agent):
    from transfers.imports.mapping import MappingError

    with pytest.raises(MappingError, match="both mapped to the same field"):
        validate_mapping({"a": "email", "b": "email"}, ["a", "b"], {}, {})
    with pytest.raises(MappingError, match="no attribute with key 'nope'"):
        validate_mapping({"a": "attr:nope"}, ["a"], {}, {})
    with pytest.raises(MappingError, match="choose a type"):
        validate_mapping({"a": "new:colour"}, ["a"], {}, {})


@pytest.mark.django_db
def test_a_column_named_like_an_archived_attribute_is_not_offered_as_a_new_one(agent):
    AttributeFactory(agent=agent, key="old_plan", label="Old plan", archived=True)

    suggestion = auto_map(
        ["Old plan"], list(agent.attribute_definitions.all()), [], create_unknown=True
    )

    assert suggestion.mapping == {"Old plan": "ignore"}
    assert suggestion.new_attributes == {}
