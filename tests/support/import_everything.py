"""Import every module under the given folders, with nothing else on sys.path but the standard library.

``python -I -S tests/support/import_everything.py ASSET [EXTRA...]`` puts ASSET and each EXTRA first on
sys.path, imports every module found under ASSET (packages walked recursively) and prints a JSON object:
``{"imported": [module, ...], "failed": [[module, exception type, missing module or null, message], ...]}``.
"""

import importlib
import json
import pkgutil
import sys
import warnings

# Entry points and test suites shipped inside wheels run code on import; they are not library modules.
SKIPPED_PARTS = {"__main__", "tests", "test", "testing", "conftest"}


def main() -> None:
    asset, *extra = sys.argv[1:]
    sys.path[:0] = [asset, *extra]
    warnings.simplefilter("ignore")
    imported: list[str] = []
    failed: list[list[str | None]] = []
    for module in pkgutil.walk_packages([asset], onerror=lambda name: None):
        if SKIPPED_PARTS & set(module.name.split(".")):
            continue
        try:
            importlib.import_module(module.name)
            imported.append(module.name)
        except Exception as error:  # every failure is reported; none stops the walk
            missing = getattr(error, "name", None) if isinstance(error, ImportError) else None
            failed.append([module.name, type(error).__name__, missing, str(error)[:300]])
    print(json.dumps({"imported": imported, "failed": failed}))


if __name__ == "__main__":
    main()
