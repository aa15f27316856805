"""``dgsamp data download`` and ``dgsamp data verify``: fetch the benchmarks into the layouts
the loaders in ``dgsamp.datasets`` read, and check a tree against published image counts.

``sources`` is the table of archives (URL, checksum, size, layout), ``fetch`` the HTTP
download (progress, resume, mirrors), ``extract`` the atomic unpacking, ``counts`` the
published counts and ``verify`` the comparison.
"""
