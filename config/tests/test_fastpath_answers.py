"""The answers the fast path keeps decoded (config.fastpath.LoadedAnswers)."""

from config.fastpath import Answer, LoadedAnswers


def stored(body: bytes, etag: bytes = b'"e1"') -> bytes:
    headers = [(b"content-type", b"application/json"), (b"etag", etag)]
    return Answer(stamp=b"s", secure=False, headers=headers, body=body).dump()


def test_an_answer_stored_anew_under_the_same_key_is_decoded_anew():
    answers = LoadedAnswers(budget=10_000)
    first = answers.load("k", stored(b"[1]"))
    assert answers.load("k", stored(b"[1]")) is first
    second = answers.load("k", stored(b"[2]", etag=b'"e2"'))
    assert second.body == b"[2]"
    assert second.etag() == b'"e2"'


def test_the_oldest_answers_go_first_once_the_budget_is_spent():
    one = stored(b"1" * 100)
    answers = LoadedAnswers(budget=2 * len(one) + 10)
    first = answers.load("a", one)
    answers.load("b", stored(b"2" * 100))
    answers.load("c", stored(b"3" * 100))
    assert answers.load("a", one) is not first  # decoded again
    assert answers.load("a", one) is answers.load("a", one)


def test_an_answer_larger_than_the_budget_is_decoded_and_not_kept():
    big = stored(b"x" * 500)
    answers = LoadedAnswers(budget=100)
    assert answers.load("k", big).body == b"x" * 500
    assert answers.load("k", big) is not answers.load("k", big)


def test_what_is_not_a_stored_answer_is_none():
    assert LoadedAnswers(budget=100).load("k", b"not an answer") is None
