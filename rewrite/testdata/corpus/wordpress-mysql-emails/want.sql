/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Table structure for table `wp_blogs`
--

DROP TABLE IF EXISTS `wp_blogs`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_blogs` (
  `blog_id` bigint(20) NOT NULL,
  `site_id` bigint(20) DEFAULT NULL,
  `domain` varchar(200) DEFAULT NULL,
  `path` varchar(100) DEFAULT NULL,
  PRIMARY KEY (`blog_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `wp_blogs`
--

LOCK TABLES `wp_blogs` WRITE;
/*!40000 ALTER TABLE `wp_blogs` DISABLE KEYS */;
INSERT INTO `wp_blogs` VALUES
(1,1,'staging.example.com','/'),
(2,1,'shop.example.com','/'),
(3,1,'staging.example.com','/blog/');
/*!40000 ALTER TABLE `wp_blogs` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `wp_log`
--

DROP TABLE IF EXISTS `wp_log`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_log` (
  `msg` text DEFAULT NULL,
  `at` datetime DEFAULT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `wp_log`
--

LOCK TABLES `wp_log` WRITE;
/*!40000 ALTER TABLE `wp_log` DISABLE KEYS */;
INSERT INTO `wp_log` VALUES
('no primary key: https://staging.example.com','2026-01-01 00:00:00');
/*!40000 ALTER TABLE `wp_log` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `wp_options`
--

DROP TABLE IF EXISTS `wp_options`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_options` (
  `option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `option_name` varchar(191) DEFAULT NULL,
  `option_value` longtext DEFAULT NULL,
  PRIMARY KEY (`option_id`)
) ENGINE=InnoDB AUTO_INCREMENT=19 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `wp_options`
--

LOCK TABLES `wp_options` WRITE;
/*!40000 ALTER TABLE `wp_options` DISABLE KEYS */;
INSERT INTO `wp_options` VALUES
(1,'siteurl','https://staging.example.com/wp'),
(2,'home','https://staging.example.com'),
(3,'upload_path','/srv/staging/wp-content/uploads'),
(4,'widget_emoji','a:1:{i:2;a:2:{s:5:\"title\";s:9:\"Café ☕\";s:4:\"text\";s:44:\"🎉 https://staging.example.com/ünïcödé\";}}'),
(5,'quote_semicolon','a:2:{s:1:\"a\";s:34:\"x\";y\\\";https://staging.example.com\";s:1:\"b\";s:3:\"\";\"\";}'),
(6,'nested','a:2:{s:5:\"inner\";a:1:{s:3:\"url\";s:27:\"https://staging.example.com\";}s:6:\"double\";s:35:\"s:27:\"https://staging.example.com\";\";}'),
(7,'object','O:8:\"stdClass\":3:{s:3:\"url\";s:27:\"https://staging.example.com\";s:9:\"\0*\0secret\";s:27:\"https://staging.example.com\";s:12:\"\0Foo\0private\";s:27:\"https://staging.example.com\";}'),
(8,'refs','a:3:{i:0;O:8:\"stdClass\":1:{s:1:\"u\";s:27:\"https://staging.example.com\";}i:1;R:3;i:2;r:2;}'),
(9,'floats','a:4:{i:0;d:0.1000000000000000055511151231257827;i:1;d:1.0E+25;i:2;d:-0;i:3;d:INF;}'),
(10,'json_in_serialized','a:1:{s:4:\"json\";s:45:\"{\"url\":\"https:\\/\\/staging.example.com\\/page\"}\";}'),
(11,'json_in_json','{\"outer\":\"{\\\"url\\\":\\\"https:\\\\\\/\\\\\\/staging.example.com\\\"}\"}'),
(12,'base64','aHR0cHM6Ly9leGFtcGxlLmNvbS93cC1jb250ZW50L3VwbG9hZHM='),
(13,'text_then_serialized','Moved to https://staging.example.com a:1:{s:1:\"u\";s:19:\"https://staging.example.com\";}'),
(14,'broken_serialized','a:1:{s:3:\"url\";s:20:\"https://example.com\";}'),
(15,'custom_object','C:8:\"MyCustom\":21:{x:https://example.com}'),
(16,'enum','a:2:{i:0;E:11:\"Suit:Hearts\";i:1;s:27:\"https://staging.example.com\";}'),
(17,'other_domains','https://example.com.au https://myexample.com https://example.community'),
(18,'control_chars','nul\0ctrlz\Z https://staging.example.com\r\n');
/*!40000 ALTER TABLE `wp_options` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `wp_posts`
--

DROP TABLE IF EXISTS `wp_posts`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_posts` (
  `ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `post_content` longtext DEFAULT NULL,
  `post_excerpt` text DEFAULT NULL,
  `guid` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB AUTO_INCREMENT=4 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `wp_posts`
--

LOCK TABLES `wp_posts` WRITE;
/*!40000 ALTER TABLE `wp_posts` DISABLE KEYS */;
INSERT INTO `wp_posts` VALUES
(1,'<!-- wp:image {\"url\":\"https:\\/\\/staging.example.com\\/a.jpg\",\"caption\":\"\\u003ca href=\\u0022https:\\u002f\\u002fstaging.example.com\\u0022\\u003e \\u0026amp;\"} -->\n<figure><img src=\"https://staging.example.com/a.jpg\"/></figure>\n<!-- /wp:image -->','Mail me@staging.example.com','https://example.com/?p=1'),
(2,'<a href=\"//staging.example.com/x\">rel</a> <a href=\"http://staging.example.com/old\">old</a> https%3A%2F%2Fstaging.example.com%2Fenc https%3a%2f%2fstaging.example.com','','https://example.com/?p=2'),
(3,'path /srv/staging/wp-content and /var/www/production stays','','https://example.com/?p=3');
/*!40000 ALTER TABLE `wp_posts` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `wp_site`
--

DROP TABLE IF EXISTS `wp_site`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_site` (
  `id` bigint(20) NOT NULL,
  `domain` varchar(200) DEFAULT NULL,
  `path` varchar(100) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `wp_site`
--

LOCK TABLES `wp_site` WRITE;
/*!40000 ALTER TABLE `wp_site` DISABLE KEYS */;
INSERT INTO `wp_site` VALUES
(1,'staging.example.com','/');
/*!40000 ALTER TABLE `wp_site` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Dumping events for database 'cairn_t_0487ebaab7'
--

--
-- Dumping routines for database 'cairn_t_0487ebaab7'
--
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

