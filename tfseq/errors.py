"""The one exception type for mistakes a user can fix (bad option, missing file, wrong run folder)."""


class UserError(Exception):
    """A problem with the user's input.

    Entry points print its message as one line on stderr and exit with code 2, without a traceback.
    The message says what is wrong (which file, key or value) and what to do instead.
    """


def first_line(err: BaseException, limit: int = 200) -> str:
    """An exception's first non-empty line, cut to `limit` characters at a word, for one-line messages (the
    exception's type when it has no message)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
