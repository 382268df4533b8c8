#pragma once
// (being written) Generator of small test models with random weights and real tensor names.
