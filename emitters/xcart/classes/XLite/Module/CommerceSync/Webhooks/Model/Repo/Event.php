<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: the outbox's queries.
 */

namespace XLite\Module\CommerceSync\Webhooks\Model\Repo;

use XLite\Module\CommerceSync\Webhooks\Model\Event as EventModel;

class Event extends \XLite\Model\Repo\ARepo
{
    /**
     * The search condition `createdSince` (Unix seconds): what commerce-sync's change feed
     * asks of the outbox through the REST API, `_path=commercesync-webhooks-event` with
     * `_cnd[createdSince]`, `_cnd[orderBy]` and `_cnd[limit]`. ARepo::search() calls
     * `prepareCnd<Name>` for each condition (X-Cart 5.3.2 classes/XLite/Model/Repo/ARepo.php,
     * callSearchConditionHandler) and has `limit` and `orderBy` itself.
     *
     * @param \Doctrine\ORM\QueryBuilder $queryBuilder The search query
     * @param mixed                      $value        Unix seconds
     *
     * @return void
     */
    protected function prepareCndCreatedSince(\Doctrine\ORM\QueryBuilder $queryBuilder, $value)
    {
        if (is_numeric($value)) {
            $queryBuilder->andWhere('e.createdAt >= :createdSince')
                ->setParameter('createdSince', (int) $value);
        }
    }

    /**
     * Pending events whose next attempt is due, oldest first.
     *
     * @param integer $now   Unix seconds
     * @param integer $limit At most this many
     *
     * @return EventModel[]
     */
    public function findDue($now, $limit)
    {
        return $this->createPureQueryBuilder('e')
            ->andWhere('e.state = :pending')
            ->andWhere('e.nextAttemptAt <= :now')
            ->setParameter('pending', EventModel::STATE_PENDING)
            ->setParameter('now', (int) $now)
            ->orderBy('e.id', 'ASC')
            ->setMaxResults((int) $limit)
            ->getQuery()
            ->getResult();
    }

    /**
     * Forget sent events older than `$before`; refused and given-up ones stay for a
     * person to look at (the sync's change feed covers what they named).
     *
     * @param integer $before Unix seconds
     *
     * @return integer Rows removed
     */
    public function deleteSentBefore($before)
    {
        return $this->getEntityManager()->createQueryBuilder()
            ->delete($this->_entityName, 'e')
            ->andWhere('e.state = :sent')
            ->andWhere('e.sentAt < :before')
            ->setParameter('sent', EventModel::STATE_SENT)
            ->setParameter('before', (int) $before)
            ->getQuery()
            ->execute();
    }
}
