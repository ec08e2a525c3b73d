"""The rules of Connect Four, for the tutorial's steps.

Players drop pieces into one of seven columns; a piece falls to the lowest
free row of its column (row 0 is the bottom). Whoever first lines up four
pieces horizontally, vertically or diagonally wins.
"""

PLAYER1, PLAYER2 = "red", "yellow"

COLUMNS, ROWS = 7, 6

DIRECTIONS = [(0, 1), (1, 0), (1, 1), (1, -1)]


class Connect4:
    """A game: ``play()`` the moves, read ``moves`` and ``winner``."""

    def __init__(self):
        self.moves = []
        self.heights = [0] * COLUMNS
        self.cells = {}
        self.winner = None

    @property
    def last_player(self):
        return PLAYER2 if not self.moves else self.moves[-1][0]

    def play(self, player, column):
        """Drop ``player``'s piece in ``column``; return the row it lands in.

        Raises ValueError for a move out of turn or into a full column.
        """
        if player == self.last_player:
            raise ValueError("It isn't your turn.")
        if not 0 <= column < COLUMNS:
            raise ValueError("This column doesn't exist.")
        row = self.heights[column]
        if row == ROWS:
            raise ValueError("This slot is full.")
        self.heights[column] += 1
        self.cells[column, row] = player
        self.moves.append((player, column, row))
        if self.winner is None and self.lines_up(player, column, row):
            self.winner = player
        return row

    def lines_up(self, player, column, row):
        for dc, dr in DIRECTIONS:
            count = 1
            for sign in (1, -1):
                c, r = column + sign * dc, row + sign * dr
                while self.cells.get((c, r)) == player:
                    count += 1
                    c, r = c + sign * dc, r + sign * dr
            if count >= 4:
                return True
        return False
