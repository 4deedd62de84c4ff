#include <gtest/gtest.h>

TEST(ServeUnits, Placeholder) {}
