import io
import os
import re
import tarfile

import numpy as np
import pytest

from conftest import SHARED_DATA, write_file
from seqtasks.data.captions import CaptionData, ImageStore, load_captions
from seqtasks.errors import DataError

FLICKR8K = os.path.join(SHARED_DATA, "flickr8k")
FLICKR8K_TAR = os.path.join(FLICKR8K, "Flicker8k_Dataset_160px_train_dev.tar")
# Three real dev images and their first real captions.
IMAGES = ["2090545563_a4e66ec76b.jpg", "3393035454_2d2370ffd4.jpg", "3695064885_a6922f06b2.jpg"]
JPEG = b"\xff\xd8"


def first_lines(path: str, n: int) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(n)]


@pytest.fixture(scope="module")
def jpegs() -> dict[str, bytes]:
    return dict(zip(IMAGES, ImageStore(FLICKR8K_TAR).read_many(IMAGES)))


@pytest.fixture
def tiny(tmp_path, jpegs):
    """A Flickr8k-layout folder: 3 real images in Flicker8k_Dataset/, 2 captions each."""
    os.mkdir(tmp_path / "Flicker8k_Dataset")
    for name, data in jpegs.items():
        write_file(tmp_path / "Flicker8k_Dataset" / name, data)
    tokens = "".join(f"{name}#{n}\t caption {n} of {name} \n" for name in IMAGES for n in range(2))
    write_file(tmp_path / "Flickr8k.token.txt", tokens)
    write_file(tmp_path / "Flickr_8k.trainImages.txt", f"{IMAGES[0]}\n{IMAGES[2]}\n")
    write_file(tmp_path / "Flickr_8k.devImages.txt", f"{IMAGES[1]}\n")
    return tmp_path


def raises(message: str):
    return pytest.raises(DataError, match=re.escape(message))


# --- the real Flickr8k files -----------------------------------------------------------


def test_flickr8k_dev_split_from_the_real_tar():
    data = load_captions(FLICKR8K, split="dev")
    assert len(data) == 1000 and data.num_captions == 5000
    assert all(len(c) == 5 for c in data.captions)
    assert data.ids[:3] == IMAGES and len(set(data.ids)) == 1000
    assert data.source == FLICKR8K and data.features is None
    assert data.images.description == FLICKR8K_TAR and data.images.is_tar
    assert data.captions[0][0] == (
        "the boy laying face down on a skateboard is being pushed along the ground by another boy ."
    )
    image = data.images.read(data.ids[0])
    assert image.startswith(JPEG) and 1000 < len(image) < 100_000
    # read_many reads the tar in archive order but answers in the order asked.
    many = data.images.read_many([data.ids[2], data.ids[0]])
    assert many == [data.images.read(data.ids[2]), image]
    assert "Flicker8k_Dataset/" + data.ids[0] in data.images and "nope.jpg" not in data.images
    with raises(f"image 'nope.jpg' is not in {FLICKR8K_TAR}"):
        data.images.read("nope.jpg")
    part = data.subset([2, 0])
    assert part.ids == [data.ids[2], data.ids[0]] and part.captions[1] == data.captions[0]
    assert part.images is data.images and isinstance(part, CaptionData)


def test_flickr8k_train_all_and_max_examples():
    train = load_captions(FLICKR8K)
    assert (len(train), train.num_captions) == (6000, 30000)
    assert train.ids[0] == first_lines(os.path.join(FLICKR8K, "Flickr_8k.trainImages.txt"), 1)[0]
    # "all": every captioned image that exists; the 2258277193_586949ec62.jpg.1 quirk is dropped.
    every = load_captions(FLICKR8K, split="all")
    assert (len(every), every.num_captions) == (7091, 35455)
    assert "2258277193_586949ec62.jpg.1" not in every.ids
    assert every.ids[0] == "1000268201_693b08cb0e.jpg"
    assert every.captions[0][1] == "A girl going into a wooden building ."
    few = load_captions(FLICKR8K, split="dev", max_examples=2)
    assert few.ids == IMAGES[:2] and few.num_captions == 10


def test_flickr8k_test_split_has_no_captions():
    with raises(
        "Flickr_8k.testImages.txt: none of its 1000 images has a caption in Flickr8k.token.txt"
    ):
        load_captions(FLICKR8K, split="test")


# --- a tiny Flickr8k-layout folder ------------------------------------------------------


def test_tiny_folder_layout_and_tar_layout(tiny, jpegs):
    data = load_captions(str(tiny))
    assert data.ids == [IMAGES[0], IMAGES[2]]
    assert data.captions[0] == [f"caption 0 of {IMAGES[0]}", f"caption 1 of {IMAGES[0]}"]
    assert data.images.description == str(tiny / "Flicker8k_Dataset") and not data.images.is_tar
    assert data.images.read_many(data.ids) == [jpegs[IMAGES[0]], jpegs[IMAGES[2]]]
    assert load_captions(str(tiny), split="all").ids == IMAGES
    # The same images in a tar, given as image_dir (relative to the folder) or found alone.
    with tarfile.open(tiny / "imgs.tar", "w") as archive:
        for name, data_ in jpegs.items():
            info = tarfile.TarInfo(f"deep/dir/{name}")
            info.size = len(data_)
            archive.addfile(info, io.BytesIO(data_))
    with raises("several places may hold the images (Flicker8k_Dataset, imgs.tar); pass image_dir"):
        load_captions(str(tiny))
    data = load_captions(str(tiny), split="dev", image_dir="imgs.tar")
    assert data.images.description == str(tiny / "imgs.tar")
    assert data.images.read(IMAGES[1]) == jpegs[IMAGES[1]]
    assert data.images.read(f"deep/dir/{IMAGES[1]}") == jpegs[IMAGES[1]]
    os.rename(tiny / "Flicker8k_Dataset", tiny / ".hidden")
    assert load_captions(str(tiny), split="dev").images.description == str(tiny / "imgs.tar")
    os.remove(tiny / "imgs.tar")
    with raises(f"{tiny}: no images; expected one sub-folder of images or one .tar of them"):
        load_captions(str(tiny))


@pytest.mark.parametrize(
    "file, content, split, message",
    [
        (
            "Flickr8k.token.txt",
            f"{IMAGES[0]}#0\tok\n{IMAGES[0]}#1 no tab here\n",
            "train",
            "Flickr8k.token.txt:2: expected '<image>#<n><TAB><caption>', found no tab",
        ),
        (
            "Flickr8k.token.txt",
            f"{IMAGES[0]}#0\tok\n\n{IMAGES[0]}\tno number\n",
            "train",
            f"Flickr8k.token.txt:3: expected '<image>#<n><TAB><caption>', found key "
            f"'{IMAGES[0]}' without '#<n>'",
        ),
        (
            "Flickr8k.token.txt",
            f"{IMAGES[0]}#x\tbad number\n",
            "train",
            "Flickr8k.token.txt:1: expected '<image>#<n><TAB><caption>', found key",
        ),
        (
            "Flickr8k.token.txt",
            f"{IMAGES[0]}#0\tok\n{IMAGES[0]}#1\t  \n",
            "train",
            f"Flickr8k.token.txt:2: empty caption for image {IMAGES[0]}",
        ),
        (
            "Flickr8k.token.txt",
            f"{IMAGES[0]}#0\tcafé \xff\n".encode("latin-1"),
            "train",
            "Flickr8k.token.txt:1: not valid UTF-8 (byte 0xe9",
        ),
        (
            "Flickr_8k.devImages.txt",
            f"{IMAGES[1]}\nmissing.jpg\n",
            "dev",
            "Flickr_8k.devImages.txt:2: image missing.jpg has no caption in Flickr8k.token.txt",
        ),
        (
            "Flickr_8k.devImages.txt",
            "\n \n",
            "dev",
            "Flickr_8k.devImages.txt: no images in the split list; expected one image name per line",
        ),
        (
            "Flickr_8k.devImages.txt",
            f"{IMAGES[1]}\n{IMAGES[0]}\n{IMAGES[1]}\n",
            "dev",
            f"Flickr_8k.devImages.txt:3: image {IMAGES[1]} is listed twice (first at line 1)",
        ),
        (
            "Flickr_8k.devImages.txt",
            "a.jpg\nb.jpg\n",
            "dev",
            "Flickr_8k.devImages.txt: none of its 2 images has a caption in Flickr8k.token.txt",
        ),
    ],
)
def test_tiny_folder_bad_input(tiny, file, content, split, message):
    write_file(tiny / file, content)
    with raises(message):
        load_captions(str(tiny), split=split)


def test_tiny_folder_missing_image_and_bad_paths(tiny):
    os.remove(tiny / "Flicker8k_Dataset" / IMAGES[2])
    with raises(
        f"Flickr_8k.trainImages.txt:2: image {IMAGES[2]} is not in {tiny / 'Flicker8k_Dataset'}"
    ):
        load_captions(str(tiny))
    assert load_captions(str(tiny), max_examples=1).ids == [IMAGES[0]]  # only kept ones checked
    with raises("no Flickr_8k.validImages.txt for split 'valid'; expected one of: dev, train, all"):
        load_captions(str(tiny), split="valid")
    with raises(f"{tiny / 'nowhere'}: no such file or directory"):
        load_captions(str(tiny / "nowhere"))
    with raises(f"{tiny / 'Flicker8k_Dataset'}: no Flickr8k.token.txt in this folder; expected"):
        load_captions(str(tiny / "Flicker8k_Dataset"))
    with raises(f"{tiny / 'Flickr_8k.devImages.txt'}: expected a Flickr8k folder"):
        load_captions(str(tiny / "Flickr_8k.devImages.txt"))
    with raises("no such image folder or .tar file"):
        load_captions(str(tiny), image_dir="elsewhere")
    with raises("not a readable tar archive"):
        load_captions(str(tiny), image_dir="Flickr8k.token.txt")
    with raises("max_examples: expected a positive number; received: 0"):
        load_captions(str(tiny), max_examples=0)


# --- CSV --------------------------------------------------------------------------------


def test_csv_layout(tmp_path, jpegs):
    os.mkdir(tmp_path / "img")
    for name, data in jpegs.items():
        write_file(tmp_path / "img" / name, data)
    csv_text = (
        "id,image,caption\n"
        f'1,img/{IMAGES[1]},"A dog, running ."\n'
        f"2,img/{IMAGES[0]},First caption\n"
        f"\n"
        f'3,img/{IMAGES[1]}," second, ""quoted"" "\n'
    )
    path = write_file(tmp_path / "captions.csv", csv_text)
    data = load_captions(path)
    assert data.ids == [f"img/{IMAGES[1]}", f"img/{IMAGES[0]}"]
    assert data.captions == [["A dog, running .", 'second, "quoted"'], ["First caption"]]
    assert data.source == path and data.images.description == str(tmp_path)
    assert data.images.read(data.ids[1]) == jpegs[IMAGES[0]]
    # image_dir: relative to the CSV's folder.
    path = write_file(tmp_path / "short.csv", f"caption,image\nhi,{IMAGES[2]}\n")
    data = load_captions(path, image_dir="img", max_examples=5)
    assert data.ids == [IMAGES[2]] and data.images.description == str(tmp_path / "img")


@pytest.mark.parametrize(
    "content, message",
    [
        ("picture,text\na.jpg,hi\n", ": cannot find an image column (tried image); the columns "
         "are: picture, text; pass --image-column"),
        ("image,text\na.jpg,hi\n", ": cannot find a caption column (tried caption); the columns "
         "are: image, text; pass --caption-column"),
        (f"image,caption\nimg/{IMAGES[0]},ok\nimg/{IMAGES[0]},  \n", ":3: empty caption"),
        ("image,caption\n,hi\n", ":2: empty image name"),
        ("image,extra,caption\na.jpg,x\n", ":2: expected 3 comma-separated fields (image, extra, caption), got 2"),
        (f"image,caption\nimg/{IMAGES[0]},ok\nimg/nope.jpg,hi\n", ":3: image file img/nope.jpg not found in "),
        ("", ": no images in the file; expected rows of image and caption"),
        ("image,caption\n\n", ": no images in the file; expected rows of image and caption"),
        (b"image,caption\na.jpg,caf\xe9\n", ":2: not valid UTF-8 (byte 0xe9"),
    ],
)  # fmt: skip
def test_csv_bad_input(tmp_path, jpegs, content, message):
    os.mkdir(tmp_path / "img")
    write_file(tmp_path / "img" / IMAGES[0], jpegs[IMAGES[0]])
    path = write_file(tmp_path / "c.csv", content)
    with raises(path + message):
        load_captions(path)


# --- feature vectors --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4,), (3, 4)])
def test_npz_layout(tmp_path, shape):
    rng = np.random.default_rng(0)
    vectors = {name: rng.normal(size=shape) for name in ("b", "a", "unused")}
    np.savez(tmp_path / "feats.npz", **vectors)
    write_file(tmp_path / "feats.csv", "image,caption\na,one\nb,two\na,three\n")
    data = load_captions(str(tmp_path / "feats.npz"))
    assert data.ids == ["a", "b"] and data.captions == [["one", "three"], ["two"]]
    assert data.images is None and data.source == str(tmp_path / "feats.npz")
    assert data.features.dtype == np.float32 and data.features.shape == (2, *shape)
    np.testing.assert_allclose(data.features[1], vectors["b"].astype(np.float32))
    part = data.subset([1])
    assert part.ids == ["b"] and part.features.shape == (1, *shape)
    np.testing.assert_array_equal(part.features[0], data.features[1])
    other = write_file(tmp_path / "other.csv", "image,caption\nunused,x\n")
    data = load_captions(str(tmp_path / "feats.npz"), captions_file=other)
    assert data.ids == ["unused"] and data.features.shape == (1, *shape)


def test_npz_bad_input(tmp_path):
    npz = str(tmp_path / "f.npz")
    np.savez(npz, a=np.zeros(4), b=np.zeros(5), c=np.array(["x", "y"]), d=np.zeros((2, 2, 2)))
    with raises(f"{npz}: no captions file {tmp_path / 'f.csv'}; expected a CSV of image,caption"):
        load_captions(npz)
    write_file(tmp_path / "f.csv", "image,caption\na,one\nzz,two\n")
    with raises(f"{tmp_path / 'f.csv'}:3: no feature vector 'zz' in {npz}"):
        load_captions(npz)
    assert load_captions(npz, max_examples=1).ids == ["a"]
    cases = {
        "a,one\nb,two": "vector 'b' has shape (5,), but 'a' has (4,); expected all vectors of one shape",
        "c,one": "vector 'c' has dtype <U1; expected numbers (float)",
        "d,one": "vector 'd' has shape (2, 2, 2); expected (dim,) or (positions, dim)",
    }  # fmt: skip
    for rows, message in cases.items():
        captions = write_file(tmp_path / "g.csv", f"image,caption\n{rows}\n")
        with raises(f"{npz}: {message}"):
            load_captions(npz, captions_file=captions)
    np.savez(tmp_path / "nan.npz", a=np.array([1.0, np.nan]))
    write_file(tmp_path / "nan.csv", "image,caption\na,one\n")
    with raises("nan.npz: vector 'a' has NaN or infinite values"):
        load_captions(str(tmp_path / "nan.npz"))
    write_file(tmp_path / "bad.npz", b"not a zip")
    write_file(tmp_path / "bad.csv", "image,caption\na,one\n")
    with raises("bad.npz: not a readable .npz archive"):
        load_captions(str(tmp_path / "bad.npz"))
    with raises(f"{tmp_path / 'none.csv'}: no such captions file"):
        load_captions(npz, captions_file=str(tmp_path / "none.csv"))


def _store_tfds(data_dir, name, examples, caption_feature="captions"):
    """A prepared TFDS dataset in ``data_dir`` with coco_captions' layout."""
    tfds = pytest.importorskip("tensorflow_datasets")
    texts = {"text": tfds.features.Text()}
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(encoding_format="jpeg"),
            "image/filename": tfds.features.Text(),
            caption_feature: tfds.features.Sequence(texts),
        }
    )
    rows = [
        (str(i), {"image": blob, "image/filename": image_id, caption_feature: {"text": captions}})
        for i, (image_id, blob, captions) in enumerate(examples)
    ]
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version="1.0.0",
        features=features,
        split_datasets={"train": rows[:-1], "validation": rows[-1:]},
        data_dir=str(data_dir),
    )


def test_tfds_captions_with_a_prepared_dataset(tmp_path, monkeypatch):
    real = load_captions(os.path.join(SHARED_DATA, "flickr8k"), split="dev", max_examples=4)
    blobs = real.images.read_many(real.ids)
    _store_tfds(tmp_path, "tiny_captions", list(zip(real.ids, blobs, real.captions)))
    from tensorflow_datasets.core import constants

    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path))  # what TFDS_DATA_DIR sets

    data = load_captions("tfds:tiny_captions", split="train")
    assert data.ids == real.ids[:3] and data.captions == real.captions[:3]
    assert data.images.read_many(data.ids) == blobs[:3]  # still encoded: JPEG bytes as stored
    assert data.source == "tfds:tiny_captions"
    val = load_captions("tfds:tiny_captions", split="validation")
    assert val.ids == real.ids[3:] and val.captions == real.captions[3:]
    assert len(load_captions("tfds:tiny_captions", split="train", max_examples=2)) == 2

    with pytest.raises(
        DataError, match=r"^tfds:tiny_captions: no caption feature 'caption' \(tried"
    ):
        load_captions("tfds:tiny_captions", caption_column="caption")
    with pytest.raises(
        DataError, match=r"^tfds:tiny_captions: no image feature 'photo'; its image "
    ):
        load_captions("tfds:tiny_captions", image_column="photo")
    with pytest.raises(DataError, match=r"^tfds:tiny_captions: cannot load split 'test': "):
        load_captions("tfds:tiny_captions", split="test")
    with pytest.raises(DataError, match=r"^tfds:no_such_captions_xyz: cannot load split 'train': "):
        load_captions("tfds:no_such_captions_xyz")
