"""Brown Corpus -> plain text: work/train.txt (one paragraph per line, for SentencePiece),
work/train-docs.json and work/validation-docs.json (one string per file), work/split.json."""

from common import CORPUS_DIR, log, work_path, write_json

from tiergate_model.corpus import file_text, read_file, split


def main() -> None:
    parts = split(CORPUS_DIR)
    write_json(work_path("split.json"), parts)
    with open(work_path("train.txt"), "w", encoding="utf-8") as fh:
        for f in parts["train"]:
            for p in read_file(CORPUS_DIR, f):
                fh.write(p + "\n")
    for name in ("train", "validation"):
        docs = [file_text(CORPUS_DIR, f) for f in parts[name]]
        write_json(work_path(f"{name}-docs.json"), docs)
        log(f"{name}: {len(docs)} files, {sum(len(d) for d in docs):,} characters")


if __name__ == "__main__":
    main()
