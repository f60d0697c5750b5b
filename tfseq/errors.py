"""The one exception type for mistakes a user can fix (bad option, missing file, wrong run folder)."""


class UserError(Exception):
    """A problem with the user's input.

    Entry points print its message as one line on stderr and exit with code 2, without a traceback.
    The message says what is wrong (which file, key or value) and what to do instead.
    """
