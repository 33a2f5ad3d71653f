"""The decision, pure policy: the ship rule and its evidence (decision, evidence), a two-file
comparison (compare), nightly re-validation's verdict (revalidate). Effects are passed in."""
