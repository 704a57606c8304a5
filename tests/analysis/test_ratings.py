"""Reading ratings tables: column mapping, defaults, and errors that name file, line and column."""

import pytest

from mos_study.analysis import RatingsError, parse_columns, parse_scale, read_ratings


def write(tmp_path, text, name="study.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_and_optional_columns(tmp_path):
    path = write(
        tmp_path, "rater,image,method,score,response_ms,kind\nr1,i1,bicubic,4,1200,\nr1,i2,bicubic,5,,repeat\n"
    )
    ratings = read_ratings(path)
    assert ratings.dataset.tolist() == ["study", "study"]  # named after the file
    assert ratings.kind.tolist() == ["trial", "repeat"]
    assert ratings.response_ms[0] == 1200 and ratings.response_ms.isna()[1]
    assert ratings.line.tolist() == [2, 3]


def test_column_mapping(tmp_path):
    path = write(tmp_path, "subject,content,condition,vote\ns1,c1,hrc1,3\n")
    ratings = read_ratings(path, columns=parse_columns("rater=subject,image=content,method=condition,score=vote"))
    assert ratings[["rater", "image", "method", "score"]].iloc[0].tolist() == ["s1", "c1", "hrc1", 3.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("rater,image,score\nr,i,3\n", r"study.csv:1: missing column\(s\) method"),
        ("rater,image,method,score\nr,i,m,3\nr,i,m,6\n", r"study.csv:3: column 'score' is outside the scale 1..5"),
        ("rater,image,method,score\nr,i,m,3\nr,i,m,three\n", r"study.csv:3: column 'score' is not a number: 'three'"),
        ("rater,image,method,score\nr,i,m,3\n,i,m,3\n", r"study.csv:3: column 'rater' is empty"),
        ("rater,image,method,score\nr,i,m,\n", r"study.csv:2: column 'score' is empty"),
        ("rater,image,method,score,response_ms\nr,i,m,3,fast\n", r"study.csv:2: column 'response_ms' is not a number"),
        ("rater,image,method,score,kind\nr,i,m,3,warmup\n", r"study.csv:2: column 'kind' must be one of"),
        ("rater,image,method,score,is_calibration\nr,i,m,3,maybe\n", r"study.csv:2: column 'is_calibration'"),
    ],
)
def test_errors_name_file_line_and_column(tmp_path, text, message):
    with pytest.raises(RatingsError, match=message):
        read_ratings(write(tmp_path, text))


def test_other_scales(tmp_path):
    path = write(tmp_path, "rater,image,method,score\nr,i,m,87.5\n")
    assert read_ratings(path, scale=parse_scale("0,100")).score[0] == 87.5
    with pytest.raises(RatingsError, match="outside the scale 1..5"):
        read_ratings(path)
    with pytest.raises(RatingsError, match="LOW,HIGH"):
        parse_scale("5")


def test_bad_column_spec():
    with pytest.raises(RatingsError, match="OURS=THEIRS"):
        parse_columns("rater")
    with pytest.raises(RatingsError, match="unknown column 'grade'"):
        parse_columns("grade=score")


def test_missing_file(tmp_path):
    with pytest.raises(RatingsError, match="no such file"):
        read_ratings(tmp_path / "absent.csv")
