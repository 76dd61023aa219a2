// ImageStore against the fixture registry: what containers rely on (layers held while in use).
#include "images/image_store.h"

#include <sys/stat.h>

#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace berth::images {
namespace {

TEST(ImageStore, LayersInUseSurviveImageRemoval) {
  berth::testing::TempDir dir;
  std::string registry = berth::testing::ReadEnvFile(BERTH_REGISTRY_ENV)["BERTH_TEST_REGISTRY"];
  ASSERT_FALSE(registry.empty());
  ImageStoreOptions o;
  o.root = dir / "root";
  auto store = ImageStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  auto image = (*store)->Pull(registry + "/berth-test/layers:latest", Credentials{});
  ASSERT_TRUE(image.ok()) << image.status();
  std::vector<std::string> layers = (*store)->LayerPaths(*image);
  ASSERT_EQ(layers.size(), 4u);

  // A container holds the layers; the image goes away; the layers stay.
  ASSERT_TRUE((*store)->AcquireLayers(image->chain_ids).ok());
  ASSERT_TRUE((*store)->Remove(image->id.ToString()).ok());
  EXPECT_TRUE(absl::IsNotFound((*store)->Resolve(image->id.ToString()).status()));
  struct stat st;
  for (const std::string& l : layers) EXPECT_EQ(::stat(l.c_str(), &st), 0) << l;

  // The container goes: the layers are collected.
  ASSERT_TRUE((*store)->ReleaseLayers(image->chain_ids).ok());
  for (const std::string& l : layers) EXPECT_NE(::stat(l.c_str(), &st), 0) << l;
  auto usage = (*store)->Usage();
  ASSERT_TRUE(usage.ok());

  // Holding layers of an unknown snapshot fails and takes nothing.
  EXPECT_FALSE((*store)->AcquireLayers({Digest::Of("nope")}).ok());
}

}  // namespace
}  // namespace berth::images
