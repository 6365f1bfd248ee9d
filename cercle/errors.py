"""Expected failures of the CLI: printed as one French line, exit code 1, no traceback."""

from deployment.conventions import ToldError


class CliError(ToldError):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
