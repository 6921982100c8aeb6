package mysql

import (
	"bytes"
	"strings"
	"testing"
)

func TestLocalizeStatement(t *testing.T) {
	tests := []struct {
		name      string
		z         localizer
		in, want  string
		err       string
		learntSrc string
	}{
		{"qualified trigger", localizer{src: "shop"},
			"/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER shop.trg AFTER INSERT ON shop.t FOR EACH ROW INSERT INTO shop.log(m) VALUES ('shop.x') */",
			"/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER trg AFTER INSERT ON t FOR EACH ROW INSERT INTO log(m) VALUES ('shop.x') */", "", "shop"},
		{"backquoted, spaced, other databases kept", localizer{src: "shop"},
			"SELECT other.t.id, `shop` . `t`.id, \"shop.t\" FROM shop.t -- shop.t\n# shop.t\n/* shop.t */",
			"SELECT other.t.id, `t`.id, \"shop.t\" FROM t -- shop.t\n# shop.t\n/* shop.t */", "", "shop"},
		{"alter database", localizer{src: "shop"},
			"ALTER DATABASE `shop` CHARACTER SET latin1 COLLATE latin1_swedish_ci ",
			"ALTER DATABASE  CHARACTER SET latin1 COLLATE latin1_swedish_ci ", "", "shop"},
		{"alter the current database", localizer{src: "shop"},
			"ALTER DATABASE CHARACTER SET latin1", "ALTER DATABASE CHARACTER SET latin1", "", "shop"},
		{"alter another database", localizer{src: "shop"}, "ALTER DATABASE `prod` CHARACTER SET latin1", "", "alters another database", "shop"},
		{"alter with no known source", localizer{}, "ALTER SCHEMA shop CHARACTER SET latin1", "", "alters another database", ""},
		{"use", localizer{src: "shop"}, "USE `shop`", "", "names no database", "shop"},
		{"create database", localizer{src: "shop"}, "/*!40000 CREATE DATABASE `x` */", "", "names no database", "shop"},
		{"drop schema", localizer{src: "shop"}, "DROP SCHEMA IF EXISTS x", "", "names no database", "shop"},
		{"same names, not qualifiers", localizer{src: "shop"},
			"CREATE TABLE `shop` (`shop` INT, x INT AS (shop + 1)); SELECT t.shop.x",
			"CREATE TABLE `shop` (`shop` INT, x INT AS (shop + 1)); SELECT t.shop.x", "", "shop"},
		{"source learnt from the object's name", localizer{},
			"CREATE DEFINER=`a`@`b` TRIGGER IF NOT EXISTS shop.trg BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.v = shop.f()",
			"CREATE DEFINER=`a`@`b` TRIGGER IF NOT EXISTS trg BEFORE INSERT ON t FOR EACH ROW SET NEW.v = f()", "", "shop"},
		{"ANSI_QUOTES", localizer{src: "shop", ansi: true}, `SELECT "shop"."t".x, 'shop.t'`, `SELECT "t".x, 'shop.t'`, "", "shop"},
		{"no ANSI_QUOTES", localizer{src: "shop"}, `SELECT "shop"."t".x`, `SELECT "shop"."t".x`, "", "shop"},
		{"case folded", localizer{src: "shop", fold: true}, "SELECT SHOP.t.x", "SELECT t.x", "", "shop"},
		{"case kept", localizer{src: "shop"}, "SELECT SHOP.t.x", "SELECT SHOP.t.x", "", "shop"},
		{"numbers", localizer{src: "1"}, "SELECT 1.5, `1`.t", "SELECT 1.5, t", "", "1"},
		{"backquote in the name", localizer{src: "we`ird"}, "SELECT `we``ird`.`t`", "SELECT `t`", "", "we`ird"},
		{"escaped quotes in strings", localizer{src: "shop"}, `SELECT 'it\'s shop.t', 'a''shop.b', shop.t`, `SELECT 'it\'s shop.t', 'a''shop.b', t`, "", "shop"},
	}
	for _, tt := range tests {
		z := tt.z
		got, err := z.statement([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tt.name, got, err, tt.want)
		}
		if z.src != tt.learntSrc {
			t.Errorf("%s: source %q, want %q", tt.name, z.src, tt.learntSrc)
		}
	}
}

func TestLocalizeHeader(t *testing.T) {
	var z localizer
	z.header([]byte("-- Host: 127.0.0.1    Database: wp_prod"))
	if z.src != "wp_prod" {
		t.Errorf("source %q", z.src)
	}
}

func FuzzLocalize(f *testing.F) {
	for _, s := range []string{"CREATE TRIGGER shop.trg AFTER INSERT ON shop.t FOR EACH ROW INSERT INTO `shop`.log VALUES ('shop.')",
		"/*!50003 ALTER DATABASE `shop` */", "SELECT \"shop\".x -- shop.", "/* shop.t", "'shop.t", "`shop`.", "shop . "} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, stmt []byte, ansi bool) {
		z := localizer{src: "shop", ansi: ansi}
		got, err := z.statement(stmt)
		if err != nil {
			return
		}
		if len(got) > len(stmt) {
			t.Fatalf("grew: %q → %q", stmt, got)
		}
		if len(got) < len(stmt) && !bytes.Contains(bytes.ToLower(stmt), []byte("shop")) {
			t.Fatalf("changed without the source's name: %q → %q", stmt, got)
		}
	})
}
